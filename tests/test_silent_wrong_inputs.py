"""Inputs that would score silently wrong (issue 10, point 7): bad values in precomputed `.flo` files,
EXIF-oriented JPEGs, decompression-bomb images. Real files written here, scored by the real commands."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from vcbench.cli import main
from vcbench.errors import InputError
from vcbench.flow.flo import write_flo
from vcbench.flow.precomputed import PrecomputedFlow
from vcbench.frames import Clip, image_size, read_image, write_frames


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("vcbench: error: "), err
    return err


# ------------------------------------------------------------------------------------- .flo values
def _lai_layout(root: Path, clip: str, fws: list[np.ndarray], bws: list[np.ndarray] | None = None) -> Path:
    for t, f in enumerate(fws):
        write_flo(root / "fw_flow" / clip / f"{t:05d}.flo", f)
    for t, b in enumerate(bws or []):
        write_flo(root / "bw_flow" / clip / f"{t:05d}.flo", b)
    return root


def _smooth_flow(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (cv2.GaussianBlur(rng.normal(0, 3, (h, w, 2)).astype(np.float32), (0, 0), 4) * 4).astype(np.float32)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_flow_is_refused_naming_file_and_frame(tmp_path, bad):
    fws = [_smooth_flow(12, 16, t) for t in range(3)]
    fws[2][5, 7, 1] = bad
    root = _lai_layout(tmp_path / "flow", "bear", fws, [-f for f in fws])
    pre = PrecomputedFlow(root)
    pre.pairs("bear", 0, 2)  # frames before the bad one are fine
    kind = "NaN" if np.isnan(bad) else "infinite"
    with pytest.raises(InputError) as exc:
        pre.pairs("bear", 0, 3)
    msg = str(exc.value)
    assert msg.startswith(f"{root / 'fw_flow' / 'bear' / '00002.flo'}: clip 'bear', frames 2 -> 3: flow holds "
                          f"{kind} values at 1 pixel(s), the first at x=7, y=5"), msg
    assert "\n" not in msg


def test_unknown_flow_marker_counts_as_occluded(tmp_path):
    """Middlebury stores 1e10 where the flow is unknown: those pixels get weight 0 (and zero flow, so
    no warp samples 1e10 pixels away); forward pixels landing on unknown backward flow are occluded
    too; the rest is Lai's test as before. The protocol says so."""
    h, w = 24, 32
    fw = np.zeros((h, w, 2), np.float32)
    fw[..., 0], fw[..., 1] = 2.0, 1.0  # a constant pan: consistent everywhere, no motion boundary
    bw = -fw
    clean = PrecomputedFlow(_lai_layout(tmp_path / "clean", "c", [fw], [bw])).pairs("c", 0, 1)
    assert (clean.noc == 1).all()
    fw_marked, bw_marked = fw.copy(), bw.copy()
    fw_marked[3:6, 4:9] = 1e10
    bw_marked[15:18, 20:26, 0] = -1.7e9  # one component is enough
    pre = PrecomputedFlow(_lai_layout(tmp_path / "marked", "c", [fw_marked], [bw_marked]))
    assert pre.params["unknown_flow"] == "|u| or |v| >= 1e+09 (Middlebury's marker) counts as occluded"
    got = pre.pairs("c", 0, 1)
    assert torch.isfinite(got.fw).all() and got.fw.abs().max() <= 2
    noc = got.noc[0, 0].numpy()
    assert (noc[3:6, 4:9] == 0).all()
    assert (noc[14:17, 18:24] == 0).all()  # x + (2, 1) lands on the unknown backward flow
    far = np.ones((h, w), bool)
    far[0:9, 1:12] = False
    far[11:20, 15:27] = False
    assert (noc[far] == 1).all()


def test_score_refuses_nan_flow_in_one_line(tmp_path, sample_frames, capsys):
    frames = sample_frames["bikes"][:4]
    write_frames(tmp_path / "gt" / "bikes", frames)
    write_frames(tmp_path / "pred" / "bikes", frames)
    h, w = frames.shape[1:3]
    fws = [_smooth_flow(h, w, t) for t in range(3)]
    fws[1][0, 0, 0] = np.nan
    _lai_layout(tmp_path / "flow", "bikes", fws, [-f for f in fws])
    code = main(["score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--metrics", "warp_error",
                 "--flow", str(tmp_path / "flow"), "--quiet", "--no-cache"])
    err = _one_line(capsys)
    assert code == 2 and "fw_flow/bikes/00001.flo: clip 'bikes', frames 1 -> 2: flow holds NaN values" in err, err


# ------------------------------------------------------------------------------------------ EXIF
def _stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores so that applying `orientation` gives `upright` (EXIF's eight cases)."""
    inverse = {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
               5: lambda a: np.transpose(a, (1, 0, 2)), 6: lambda a: np.rot90(a, 1),
               7: lambda a: np.rot90(np.transpose(a, (1, 0, 2)), 2), 8: lambda a: np.rot90(a, -1)}
    return np.ascontiguousarray(inverse[orientation](upright))


def _save_oriented(path: Path, upright: np.ndarray, orientation: int, fmt: str = "JPEG") -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    kwargs = {"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}
    Image.fromarray(_stored_for(upright, orientation)).save(path, format=fmt, exif=exif, **kwargs)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_oriented_jpeg_is_read_upright_as_cv2_reads_it(tmp_path, sample_frames, orientation):
    upright = sample_frames["bigbuckbunny"][0][:48, :80]
    p = tmp_path / f"o{orientation}.jpg"
    _save_oriented(p, upright, orientation)
    got = read_image(p)
    assert got.shape == upright.shape and image_size(p) == upright.shape[:2]
    ref = cv2.imread(str(p), cv2.IMREAD_COLOR)[:, :, ::-1]  # OpenCV applies the EXIF orientation
    assert ref.shape == got.shape
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 2  # two JPEG decoders
    assert np.abs(got.astype(int) - upright.astype(int)).mean() < 2  # upright, not turned or mirrored


def test_score_reads_exif_rotated_gt_upright(tmp_path, sample_frames):
    """GT frames stored sideways with orientation 6 (as a phone writes them), predictions upright:
    scored upright (today: the sideways GT did not even pair with the predictions)."""
    frames = sample_frames["bikes"][:3]
    (tmp_path / "gt" / "bikes").mkdir(parents=True)
    for t, f in enumerate(frames):
        _save_oriented(tmp_path / "gt" / "bikes" / f"{t:05d}.jpg", f, 6)
    write_frames(tmp_path / "pred" / "bikes", frames)
    out = tmp_path / "r.json"
    assert main(["score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--metrics", "psnr",
                 "--json", str(out), "--quiet", "--no-cache"]) == 0
    res = json.loads(out.read_text())
    assert res["metrics"]["psnr"] > 40
    assert "EXIF orientation applied" in res["protocol"]["decoder"]
    assert Clip("bikes", tmp_path / "gt" / "bikes", "frames").size() == frames.shape[1:3]


# ------------------------------------------------------------------------------ decompression bomb
def _png_bomb(path: Path, w: int = 20000, h: int = 20000) -> None:
    """A tiny valid PNG whose header claims w x h pixels (400 M here, above Pillow's 179 M limit)."""
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, format="PNG")
    data = bytearray(path.read_bytes())
    at = data.index(b"IHDR")
    data[at + 4:at + 12] = struct.pack(">II", w, h)
    data[at + 17:at + 21] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 17])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("which", ["first", "later"])
def test_decompression_bomb_is_the_same_line_for_any_frame(tmp_path, sample_frames, capsys, which):
    frames = sample_frames["bikes"][:3]
    write_frames(tmp_path / "gt" / "bikes", frames)
    write_frames(tmp_path / "pred" / "bikes", frames)
    bomb = tmp_path / "pred" / "bikes" / ("00000.png" if which == "first" else "00002.png")
    _png_bomb(bomb)
    code = main(["score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--metrics", "psnr",
                 "--quiet", "--no-cache"])
    err = _one_line(capsys)
    assert code == 2, err
    assert err.startswith(f"vcbench: error: {bomb}: image too large to decode safely (Image size (400000000 pixels) "
                          "exceeds limit"), err
    assert err.endswith("downscale the frames before scoring."), err
