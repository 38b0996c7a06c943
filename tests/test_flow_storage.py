"""The build's flow storage: KITTI 16-bit PNGs on a 1/64 px grid (error <= 1/128 px within +-512 px),
deterministic, several times smaller than the float16 arrays stored before, and read by the
scorer's precomputed flow as well as the DEVC export."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from vcbench.flow.flo import (FLOW_PNG_MAX_ERROR, FLOW_PNG_RANGE, UNKNOWN_FLOW_THRESH, decode_flow_png, encode_flow_png,
                              read_flow_file, write_flo)


@pytest.fixture(scope="module")
def real_flow(sample_frames) -> np.ndarray:
    """DIS flow of consecutive frames of a real clip, (N, H, W, 2) float32."""
    from vcbench.flow.registry import get_estimator

    frames = sample_frames["bikes"][:5]
    t = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
    return get_estimator("dis", "cpu")(t[:-1], t[1:]).permute(0, 2, 3, 1).numpy().astype(np.float32)


def test_round_trip_error_is_at_most_half_a_64th_pixel(real_flow):
    assert np.abs(real_flow).max() > 1.0  # the clip moves
    for f in real_flow:
        data = encode_flow_png(f)
        back, valid = decode_flow_png(data)
        assert back.dtype == np.float32 and back.shape == f.shape and valid.all()
        err = np.abs(back - f).max()
        assert err <= FLOW_PNG_MAX_ERROR == 1 / 128
        assert encode_flow_png(f) == data  # deterministic bytes
    # float16 (the format before) is no better at 16..32 px and worse above.
    big = np.full((4, 4, 2), 40.0 + 1 / 48, np.float32)
    assert np.abs(big.astype(np.float16).astype(np.float32) - big).max() > FLOW_PNG_MAX_ERROR
    assert np.abs(decode_flow_png(encode_flow_png(big))[0] - big).max() <= FLOW_PNG_MAX_ERROR


def test_out_of_range_and_nan_are_saturated_and_marked_unknown(tmp_path):
    f = np.zeros((3, 5, 2), np.float32)
    f[0, 0] = (FLOW_PNG_RANGE + 3, 1.0)
    f[1, 2] = (-FLOW_PNG_RANGE - 100, 0.0)
    f[2, 4] = (np.nan, 0.0)
    f[2, 3] = (511.9, -511.9)  # inside the range: kept
    flow, valid = decode_flow_png(encode_flow_png(f))
    assert valid.sum() == 15 - 3 and not valid[0, 0] and not valid[1, 2] and not valid[2, 4]
    assert flow[0, 0, 0] == pytest.approx(FLOW_PNG_RANGE - 1 / 64) and flow[1, 2, 0] == -FLOW_PNG_RANGE
    np.testing.assert_allclose(flow[2, 3], (511.9, -511.9), atol=FLOW_PNG_MAX_ERROR)
    (tmp_path / "f.png").write_bytes(encode_flow_png(f))
    read = read_flow_file(tmp_path / "f.png")
    assert (np.abs(read) >= UNKNOWN_FLOW_THRESH).any(axis=-1).sum() == 3  # the scorer counts them occluded


def test_png_is_several_times_smaller_than_float16(real_flow):
    f16 = io.BytesIO()
    np.save(f16, real_flow.astype(np.float16))
    png = sum(len(encode_flow_png(f)) for f in real_flow)
    assert png < 0.4 * len(f16.getvalue()), (png, len(f16.getvalue()))


def test_precomputed_flow_reads_png_as_it_reads_flo(real_flow, tmp_path):
    """`--flow PATH` with KITTI PNGs gives the same flow and mask as .flo files of the same values."""
    from vcbench.flow.precomputed import PrecomputedFlow

    decoded = [decode_flow_png(encode_flow_png(f))[0] for f in real_flow]
    for kind, ext in (("png", "png"), ("flo", "flo")):
        for direction in ("fw_flow", "bw_flow"):
            d = tmp_path / kind / direction / "clip"
            d.mkdir(parents=True)
            for t, f in enumerate(decoded if direction == "fw_flow" else decoded[::-1]):
                if ext == "png":
                    (d / f"{t:05d}.png").write_bytes(encode_flow_png(f))
                else:
                    write_flo(d / f"{t:05d}.flo", f)
    n, h, w = real_flow.shape[:3]
    a = PrecomputedFlow(tmp_path / "png").pairs("clip", 0, n, (h, w))
    b = PrecomputedFlow(tmp_path / "flo").pairs("clip", 0, n, (h, w))
    assert torch.equal(a.fw, b.fw) and torch.equal(a.noc, b.noc)
    assert 0.2 < float(a.noc.mean()) < 1.0
