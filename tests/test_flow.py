"""Flow package: .flo I/O, the backward warp, Lai's occlusion test, estimators and precomputed flow.

References are independent: a numpy bilinear sampler written from FlowNet2's Resample2d (the warp in
Lai et al.'s code), a numpy transcription of Lai's `detect_occlusion` (called as their
`compute_flow_occlusion.py` calls it), torchvision's RAFT and ptlflow's FlowNet2 with their own
correlation, all on real frames and random-init weights in a private TORCH_HOME.
"""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from conftest import requires_gpu

from vcbench.errors import InputError, WeightsError
from vcbench.flow.base import pad_to_multiple, unpad
from vcbench.flow.registry import ESTIMATORS, estimator_names, get_estimator
from vcbench.flow.flo import read_flo, write_flo
from vcbench.flow.occlusion import non_occlusion_mask, occlusion_mask
from vcbench.flow.pairs import flow_pairs
from vcbench.flow.precomputed import PrecomputedFlow
from vcbench.flow.warp import backward_warp
from vcbench.weights import digests


# ----------------------------------------------------------------------------- numpy references
def resample_np(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """FlowNet2's Resample2d in float64: img (H, W, C) sampled at (x + u, y + v), neighbours clamped."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    xf = xs + flow[..., 0]
    yf = ys + flow[..., 1]
    x0 = np.floor(xf)
    y0 = np.floor(yf)
    ax = (xf - x0)[..., None]
    ay = (yf - y0)[..., None]
    xl = np.clip(x0, 0, w - 1).astype(int)
    xr = np.clip(x0 + 1, 0, w - 1).astype(int)
    yt = np.clip(y0, 0, h - 1).astype(int)
    yb = np.clip(y0 + 1, 0, h - 1).astype(int)
    img = img.astype(np.float64)
    return ((1 - ax) * (1 - ay) * img[yt, xl] + ax * (1 - ay) * img[yt, xr]
            + (1 - ax) * ay * img[yb, xl] + ax * ay * img[yb, xr])


def lai_detect_occlusion(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Lai's utils.detect_occlusion(fw_flow=first, bw_flow=second), transcribed; (H, W) 0/1."""
    warped = resample_np(first, second)                       # "fw_flow" warped by "bw_flow"
    mag = lambda f: f[..., 0] ** 2 + f[..., 1] ** 2          # noqa: E731
    mask1 = mag(warped + second) > 0.01 * (mag(warped) + mag(second)) + 0.5
    h, w = second.shape[:2]
    gx = np.zeros((h, w, 2))
    gy = np.zeros((h, w, 2))
    gx[:, :-1] = second[:, :-1] - second[:, 1:]
    gy[:-1, :] = second[:-1, :] - second[1:, :]
    mask2 = (gx ** 2).sum(-1) + (gy ** 2).sum(-1) > 0.01 * mag(second) + 0.002
    return np.logical_or(mask1, mask2).astype(np.float64)


def lai_occlusion_for_pair(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    # compute_flow_occlusion.py: fw_occ = utils.detect_occlusion(bw_flow, fw_flow)
    return lai_detect_occlusion(bw, fw)


def to_t(a: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) or (H, W, C) array -> (N, C, H, W) tensor."""
    a = a if a.ndim == 4 else a[None]
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def bikes_frames() -> np.ndarray:
    """6 consecutive real frames of bikes.mp4, downscaled to 68x160 (N, H, W, 3) uint8."""
    from vcbench.frames import Clip, sample_videos

    out = []
    for i, f in enumerate(Clip("bikes", sample_videos()["bikes"], "video").iter_frames()):
        if i >= 6:
            break
        out.append(cv2.resize(f, (160, 68), interpolation=cv2.INTER_AREA))
    return np.stack(out)


# ----------------------------------------------------------------------------------- .flo files
def test_flo_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    flow = (rng.standard_normal((7, 11, 2)) * 30).astype(np.float32)
    flow[0, 0] = [1e9, -1e9]                      # Middlebury's "unknown" marker survives too
    p = tmp_path / "a" / "00000.flo"
    write_flo(p, flow)
    back = read_flo(p)
    assert back.dtype == np.float32 and back.shape == (7, 11, 2)
    assert np.array_equal(back, flow)
    raw = p.read_bytes()
    assert len(raw) == 12 + 7 * 11 * 8
    assert np.frombuffer(raw[:4], "<f4")[0] == np.float32(202021.25)
    assert tuple(np.frombuffer(raw[4:12], "<i4")) == (11, 7)       # width first, then height
    assert [q.name for q in p.parent.iterdir()] == ["00000.flo"]    # no temporary file left behind


def test_flo_matches_lai_reader_layout(tmp_path):
    """Lai's read_flo: float32 tag, int32 w, int32 h, then 2*w*h float32 reshaped to (h, w, 2)."""
    flow = np.arange(3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2) - 5.5
    p = tmp_path / "x.flo"
    write_flo(p, flow)
    with open(p, "rb") as f:
        tag = np.fromfile(f, np.float32, count=1)
        w = int(np.fromfile(f, np.int32, count=1)[0])
        h = int(np.fromfile(f, np.int32, count=1)[0])
        data = np.fromfile(f, np.float32, count=2 * w * h)
    assert tag[0] == 202021.25 and (w, h) == (4, 3)
    assert np.array_equal(np.resize(data, (h, w, 2)), flow)


@pytest.mark.parametrize("damage", ["magic", "truncated", "short_header", "oversized", "bad_size"])
def test_bad_flo_raises_input_error(tmp_path, damage):
    p = tmp_path / "bad.flo"
    write_flo(p, np.zeros((4, 5, 2), np.float32))
    raw = bytearray(p.read_bytes())
    if damage == "magic":
        raw[:4] = np.float32(1.0).tobytes()
    elif damage == "truncated":
        raw = raw[:-3]
    elif damage == "short_header":
        raw = raw[:7]
    elif damage == "oversized":
        raw += b"\0" * 8
    else:
        raw[4:8] = np.int32(-5).tobytes()
    p.write_bytes(bytes(raw))
    with pytest.raises(InputError) as ei:
        read_flo(p)
    msg = str(ei.value)
    assert str(p) in msg and "\n" not in msg


def test_missing_flo_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_flo(tmp_path / "nope.flo")


# ------------------------------------------------------------------------------------------ warp
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_warp_integer_translation_is_a_shift(dtype):
    g = torch.Generator().manual_seed(1)
    img = torch.rand((2, 3, 9, 13), generator=g, dtype=dtype)
    flow = torch.zeros((2, 2, 9, 13), dtype=dtype)
    flow[0, 0], flow[0, 1] = 2.0, -1.0          # frame 0 sampled at (x + 2, y - 1)
    flow[1, 0], flow[1, 1] = -3.0, 4.0
    out = backward_warp(img, flow)
    assert out.dtype == dtype and out.shape == img.shape
    # grid_sample's [-1, 1] normalisation round trip leaves the integer positions off by float rounding
    tol = dict(atol=1e-6 if dtype == torch.float32 else 1e-13, rtol=0)
    # interior: a shift
    assert torch.allclose(out[0, :, 1:, :-2], img[0, :, :-1, 2:], **tol)
    assert torch.allclose(out[1, :, :-4, 3:], img[1, :, 4:, :-3], **tol)
    # everywhere, borders clamped: index clamping
    ys = (torch.arange(9) - 1).clamp(0, 8)
    xs = (torch.arange(13) + 2).clamp(0, 12)
    assert torch.allclose(out[0], img[0][:, ys][:, :, xs], **tol)


def test_warp_matches_resample2d_reference_on_real_frame(bikes_frames):
    rng = np.random.default_rng(2)
    img = bikes_frames[0].astype(np.float64) / 255.0
    flow = rng.uniform(-6, 6, size=(*img.shape[:2], 2))   # reaches past every border
    ref = resample_np(img, flow)
    got = backward_warp(to_t(img), to_t(flow))[0].permute(1, 2, 0).numpy()
    assert np.abs(got - ref).max() < 1e-12
    got32 = backward_warp(to_t(img).float(), to_t(flow).float())[0].permute(1, 2, 0).numpy()
    assert np.abs(got32 - ref).max() < 1e-5


def test_warp_uint8_input_gives_float32_and_empty_batch():
    img = torch.full((1, 3, 4, 4), 200, dtype=torch.uint8)
    assert backward_warp(img, torch.zeros(1, 2, 4, 4)).dtype == torch.float32
    assert backward_warp(torch.zeros(0, 3, 4, 4), torch.zeros(0, 2, 4, 4)).shape == (0, 3, 4, 4)
    with pytest.raises(ValueError):
        backward_warp(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 5))


# ------------------------------------------------------------------------------------- occlusion
def _moving_square(h=40, w=48, x0=12, y0=14, size=12, dx=4):
    fw = np.zeros((h, w, 2))
    bw = np.zeros((h, w, 2))
    fw[y0:y0 + size, x0:x0 + size, 0] = dx                 # square at t moves right by dx
    bw[y0:y0 + size, x0 + dx:x0 + dx + size, 0] = -dx      # and at t+1 comes back by -dx
    return fw, bw


def test_occlusion_marks_the_covered_band_of_a_moving_square():
    x0, y0, size, dx = 12, 14, 12, 4
    fw, bw = _moving_square(x0=x0, y0=y0, size=size, dx=dx)
    occ = occlusion_mask(to_t(fw), to_t(bw))[0, 0].numpy()
    rows = slice(y0 + 1, y0 + size - 1)
    # background just right of the square at t is covered at t+1: inconsistent fw/bw
    assert occ[rows, x0 + size:x0 + size + dx].all()
    # far background and the square's inside are consistent
    assert not occ[:, x0 + size + dx + 1:].any()
    assert not occ[:y0 - 1].any() and not occ[y0 + size + 1:].any()
    assert not occ[rows, x0 + 1:x0 + size - 1].any()
    # the square's left edge is a motion boundary (forward difference f(x) - f(x+1) at x0 - 1)
    assert occ[rows, x0 - 1].all()
    assert np.array_equal(occ, lai_occlusion_for_pair(fw, bw))


def test_occlusion_equals_lai_on_real_flow(bikes_frames):
    est = get_estimator("dis")
    a, b = to_t(bikes_frames[:-1]), to_t(bikes_frames[1:])
    fw, bw = est(a, b), est(b, a)
    occ = occlusion_mask(fw, bw).numpy()
    fw64, bw64 = fw.double(), bw.double()
    occ64 = occlusion_mask(fw64, bw64).numpy()
    total = 0
    for i in range(fw.shape[0]):
        ref = lai_occlusion_for_pair(fw64[i].permute(1, 2, 0).numpy(), bw64[i].permute(1, 2, 0).numpy())
        assert np.array_equal(occ64[i, 0], ref)
        # float32 may flip a pixel sitting exactly on a threshold; allow a handful
        total += int((occ[i, 0] != ref).sum())
        assert 0.0 < ref.mean() < 0.5
    assert total <= 5


# ------------------------------------------------------------------------------------ estimators
def test_registry_names_and_unknown():
    assert estimator_names() == ["dis", "farneback", "raft", "flownet2"]
    with pytest.raises(InputError, match="unknown flow estimator"):
        get_estimator("pwcnet")
    dis = get_estimator("DIS")
    assert dis.name == "dis" and dis.params["preset"] == "MEDIUM" and dis.weights_used() == {}
    fb = get_estimator("farneback")
    assert [fb.params[k] for k in ("pyr_scale", "levels", "winsize", "iterations", "poly_n", "poly_sigma", "flags")] \
        == [0.5, 3, 15, 3, 5, 1.2, 0]
    assert get_estimator(dis) is dis


def test_estimator_specs_declare_weights_gpu_and_precomputed(tmp_path, monkeypatch):
    """The registry's facts (what builds ask the cluster and the resolver for) and the `precomputed`
    capability that flow_pairs branches on, instead of name and isinstance tests."""
    assert {n: (s.weights, s.needs_gpu) for n, s in ESTIMATORS.items()} == {
        "dis": ((), False), "farneback": ((), False),
        "raft": (("raft_large",), True), "flownet2": (("flownet2_things",), True)}
    assert all(ESTIMATORS.load(n).name == n for n in ("dis", "farneback"))
    assert not get_estimator("dis").precomputed
    z = np.zeros((6, 8, 2), np.float32)
    _write_lai_layout(tmp_path, "c", [z], bws=[z])
    pre = get_estimator(str(tmp_path))
    assert isinstance(pre, PrecomputedFlow) and pre.precomputed and get_estimator(pre) is pre
    with pytest.raises(TypeError, match="read by clip and frame index"):  # no flow from two frames
        pre(torch.zeros((1, 3, 6, 8), dtype=torch.uint8), torch.zeros((1, 3, 6, 8), dtype=torch.uint8))
    with pytest.raises(InputError, match=r"unknown flow estimator 'nothere' \(and no such folder\)"):
        get_estimator("nothere")
    # "auto" is resolved in the library (vcbench.flow.resolve_flow): the offline default without
    # FlowNet2's weights, so the estimator (and the protocol name) never reads "auto"
    import vcbench.weights

    monkeypatch.setattr(vcbench.weights, "status", lambda name: ("missing", None, None))
    assert get_estimator("auto").name == "dis"


def _translated(img: np.ndarray, t: tuple[float, float]) -> np.ndarray:
    """img content moved by t: out(x) = img(x - t), so the flow img -> out is t everywhere."""
    h, w = img.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, xs - t[0], ys - t[1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def test_dis_subpixel_translation_of_a_real_frame():
    import skimage.data

    a = cv2.resize(skimage.data.astronaut(), (192, 192), interpolation=cv2.INTER_AREA)
    t = (1.3, -0.7)
    b = _translated(a, t)
    flow = get_estimator("dis")(to_t(a), to_t(b))[0].numpy()
    m = 16
    epe = np.hypot(flow[0, m:-m, m:-m] - t[0], flow[1, m:-m, m:-m] - t[1])
    assert np.median(epe) < 0.1
    assert epe.mean() < 0.15
    # direction convention: a(x) ~ b(x + flow(x))
    assert abs(np.median(flow[0, m:-m, m:-m]) - t[0]) < 0.1 and abs(np.median(flow[1, m:-m, m:-m]) - t[1]) < 0.1


def test_classic_estimators_are_deterministic_and_batched(bikes_frames):
    for name in ("dis", "farneback"):
        est = get_estimator(name)
        a, b = to_t(bikes_frames[:3]), to_t(bikes_frames[1:4])
        whole = est(a, b)
        single = torch.cat([est(a[i:i + 1], b[i:i + 1]) for i in range(3)])
        assert whole.dtype == torch.float32 and whole.shape == (3, 2, 68, 160)
        assert torch.equal(whole, single) and torch.equal(whole, est(a, b))
    with pytest.raises(TypeError):
        est(a.float(), b.float())
    for name in ("dis", "farneback"):             # frames smaller than DIS's 12 px minimum still work
        tiny = get_estimator(name)(a[:1, :, :8, :5], b[:1, :, :8, :5])
        assert tiny.shape == (1, 2, 8, 5) and torch.isfinite(tiny).all()


def test_pair_flows_equal_one_call_and_any_thread_count(bikes_frames):
    """The classic estimators' pair_flows (grey once per frame, pairs spread over OpenCV's thread
    count) give what the base class's one call on cat[a, b], cat[b, a] gives, bit for bit, with one
    thread or several; tiny frames (DIS's padding) too."""
    frames = to_t(bikes_frames)
    a, b = frames[:-1], frames[1:]
    threads = cv2.getNumThreads()
    try:
        for name in ("dis", "farneback"):
            est = get_estimator(name)
            ref = est(torch.cat([a, b]), torch.cat([b, a]))
            for n in (1, 3):
                cv2.setNumThreads(n)
                fw, bw = est.pair_flows(frames)
                assert torch.equal(fw, ref[:5]) and torch.equal(bw, ref[5:])
                assert torch.equal(est(a, b), ref[:5])
            tiny = frames[:3, :, :8, :5]
            fw, bw = est.pair_flows(tiny)
            assert torch.equal(fw, est(tiny[:-1], tiny[1:])) and torch.equal(bw, est(tiny[1:], tiny[:-1]))
            assert [t.shape for t in est.pair_flows(frames[:1])] == [(0, 2, 68, 160)] * 2
    finally:
        cv2.setNumThreads(threads)


def test_occlusion_in_place_is_the_plain_formula_bit_for_bit(bikes_frames):
    """occlusion_mask reuses its temporaries in place; in float32 it gives exactly what the formulas of
    the module docstring give written out plainly (each a fresh tensor, as before the rewrite)."""
    est = get_estimator("dis")
    frames = to_t(bikes_frames)
    fw, bw = est.pair_flows(frames)
    mag = lambda f: f.square().sum(dim=1, keepdim=True)  # noqa: E731
    w = backward_warp(bw, fw)
    inconsistent = mag(w + fw) > 0.01 * (mag(w) + mag(fw)) + 0.5
    dx, dy = torch.zeros_like(fw), torch.zeros_like(fw)
    dx[..., :, :-1] = fw[..., :, :-1] - fw[..., :, 1:]
    dy[..., :-1, :] = fw[..., :-1, :] - fw[..., 1:, :]
    boundary = (dx.square() + dy.square()).sum(dim=1, keepdim=True) > 0.01 * mag(fw) + 0.002
    plain = (inconsistent | boundary).float()
    assert torch.equal(occlusion_mask(fw, bw), plain)
    assert torch.equal(non_occlusion_mask(fw, bw), 1.0 - plain)
    assert 0.0 < plain.mean() < 0.5


def test_pad_and_unpad_round_trip():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    p, pads = pad_to_multiple(x, 8)
    assert p.shape[-2:] == (8, 8) and pads == (0, 1, 1, 2)
    assert torch.equal(unpad(p, pads), x)
    assert torch.equal(p[..., 0, 0], x[..., 0, 0]) and torch.equal(p[..., -1, -1], x[..., -1, -1])  # replicate
    q, pads = pad_to_multiple(x, 8, min_size=20)
    assert q.shape[-2:] == (24, 24) and torch.equal(unpad(q, pads), x)


# ------------------------------------------------------------------------------------------ RAFT
@pytest.fixture
def raft_weights(torch_home):
    from vcbench.random_weights import raft_large_state

    sd = raft_large_state(seed=0)
    path = torch_home / "hub" / "checkpoints" / "raft_large_C_T_SKHT_V2-ff5fadd5.pth"
    torch.save(sd, path)
    return sd


def test_raft_missing_weights_is_a_weights_error(torch_home):
    with pytest.raises(WeightsError, match="vcbench weights download raft_large"):
        get_estimator("raft")


@pytest.mark.slow
def test_raft_random_weights_match_torchvision(raft_weights, bikes_frames, torch_home):
    from torchvision.models.optical_flow import Raft_Large_Weights, raft_large

    with pytest.raises(WeightsError, match="does not match"):   # random weights fail the hash check
        get_estimator("raft")
    est = get_estimator("raft", allow_unverified=True)
    assert est.params["num_flow_updates"] == 12
    (fname, sha), = digests(est.weights_used()).items()
    assert fname == "raft_large_C_T_SKHT_V2-ff5fadd5.pth" and len(sha) == 64
    # 120x100: no multiple of 8 and under RAFT's 128 px minimum, so the padding path runs too
    frames = np.stack([cv2.resize(f, (100, 120), interpolation=cv2.INTER_AREA) for f in bikes_frames[:2]])
    a, b = to_t(frames[:1]), to_t(frames[1:2])
    got = est(a, b)
    assert got.shape == (1, 2, 120, 100) and torch.isfinite(got).all()
    # torchvision on RAFT's InputPadder-style input: replicate, split evenly (4+4 rows, 14+14 columns)
    ref_model = raft_large(weights=None, progress=False)
    ref_model.load_state_dict(raft_weights)
    ref_model.eval()
    pad = lambda t: torch.nn.functional.pad(t.float(), (14, 14, 4, 4), mode="replicate").round().to(torch.uint8)  # noqa: E731
    x, y = Raft_Large_Weights.C_T_SKHT_V2.transforms()(pad(a), pad(b))
    with torch.no_grad():
        ref = ref_model(x, y, num_flow_updates=12)[-1][:, :, 4:124, 14:114]
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4), (got - ref).abs().max()


# -------------------------------------------------------------------------------------- FlowNet2
@pytest.fixture(scope="module")
def flownet2_ckpt(tmp_path_factory):
    """A ptlflow-style Lightning checkpoint of FlowNet2 with random weights (38 MB, see
    vcbench.random_weights.flownet2_checkpoint); the keys and shapes are FlowNet2's own."""
    from vcbench.random_weights import write_random_weights

    return write_random_weights(tmp_path_factory.mktemp("ptlflow"), ["flownet2_things"])["flownet2_things"]


def test_fast_correlation_equals_ptlflow_fallback():
    from vcbench.flow.correlation import flownetc_correlation
    from vcbench.flow.flownet2 import import_ptlflow_flownet2

    import_ptlflow_flownet2()
    from ptlflow.utils.correlation import iter_spatial_correlation_sample

    g = torch.Generator().manual_seed(3)
    for shape in [(2, 16, 5, 7), (1, 32, 24, 31), (1, 256, 8, 12)]:
        x1 = torch.randn(shape, generator=g)
        x2 = torch.randn(shape, generator=g)
        ref = iter_spatial_correlation_sample(x1, x2, kernel_size=1, patch_size=21, stride=1, padding=0,
                                              dilation_patch=2)
        ref = ref.view(shape[0], 441, *shape[2:]) / shape[1]
        got = flownetc_correlation(x1, x2)
        assert got.shape == ref.shape
        assert torch.allclose(got, ref, atol=2e-6, rtol=1e-5), (got - ref).abs().max()


@pytest.mark.slow
def test_flownet2_random_weights_match_ptlflow(flownet2_ckpt, torch_home, bikes_frames):
    import faiss  # noqa: F401  (vcbench and ptlflow must coexist with faiss-cpu)

    (torch_home / "hub" / "checkpoints" / flownet2_ckpt.name).symlink_to(flownet2_ckpt)
    est = get_estimator("flownet2", allow_unverified=True)
    assert sys.modules["faiss"] is faiss and hasattr(faiss, "IndexFlatL2")
    assert est.params["checkpoint"] == "things" and est.model.train_size == [384, 512]
    frames = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in bikes_frames[:2]])
    got = est(to_t(frames[:1]), to_t(frames[1:]))
    assert got.shape == (1, 2, 64, 64) and torch.isfinite(got).all() and got.abs().max() > 0
    # ptlflow's own pipeline on the same model: BGR in [0, 1] as its IOAdapter gives, its own correlation
    from ptlflow.models.flownet.submodules import correlate

    est.model.flownetc.corr = correlate
    bgr = torch.from_numpy(frames[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        ref = est.model({"images": bgr[None]})["flows"][:, 0]
    scale = ref.abs().max()
    assert torch.allclose(got, ref, atol=1e-4 * float(scale), rtol=0), ((got - ref).abs().max(), scale)


def test_flownet2_bad_checkpoint_is_a_weights_error(torch_home, tmp_path):
    bad = torch_home / "hub" / "checkpoints" / "flownet2-things-d63b53a7.ckpt"
    torch.save({"state_dict": {"flownetc.conv1.0.weight": torch.zeros(1)}}, bad)
    with pytest.raises(WeightsError, match="cannot load FlowNet2 checkpoint"):
        get_estimator("flownet2", allow_unverified=True)
    torch.save({"weights": {}}, bad)
    with pytest.raises(WeightsError, match="not a ptlflow Lightning checkpoint"):
        get_estimator("flownet2", allow_unverified=True)


def test_vcbench_flow_does_not_import_ptlflow():
    code = ("import sys, torch, vcbench.flow, vcbench.flow.registry, vcbench.metrics.temporal, vcbench.metrics.cdc;"
            "from vcbench.flow import get_estimator; e = get_estimator('dis');"
            "e(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8));"
            "print(any(m.split('.')[0] == 'ptlflow' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------- precomputed / pairs
def _write_lai_layout(root, clip, fws, bws=None, occs=None):
    for t, f in enumerate(fws):
        write_flo(root / "fw_flow" / clip / f"{t:05d}.flo", f)
    for t, f in enumerate(bws or []):
        write_flo(root / "bw_flow" / clip / f"{t:05d}.flo", f)
    for t, o in enumerate(occs or []):
        p = root / "fw_occlusion" / clip / f"{t:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), (o * 255).astype(np.uint8))


def test_flow_pairs_and_precomputed_agree(bikes_frames, tmp_path):
    est = get_estimator("dis")
    frames = to_t(bikes_frames[:4])
    pairs = flow_pairs(frames, est)
    fw = est(frames[:-1], frames[1:])
    bw = est(frames[1:], frames[:-1])
    assert torch.equal(pairs.fw, fw)
    assert torch.equal(pairs.noc, 1.0 - occlusion_mask(fw, bw))
    fws = [f.permute(1, 2, 0).numpy() for f in fw]
    bws = [f.permute(1, 2, 0).numpy() for f in bw]
    occs = [1.0 - n[0].numpy() for n in pairs.noc]
    _write_lai_layout(tmp_path / "with_bw", "bikes", fws, bws=bws)
    _write_lai_layout(tmp_path / "with_occ", "bikes", fws, occs=occs)
    for root in ("with_bw", "with_occ"):
        pre = get_estimator(str(tmp_path / root))
        assert isinstance(pre, PrecomputedFlow) and pre.weights_used() == {}
        p = flow_pairs(frames, pre, clip="bikes")
        assert torch.equal(p.fw, fw) and torch.equal(p.noc, pairs.noc)
        # a batch starting at frame 1 reads pairs 1 and 2
        q = flow_pairs(frames[1:], pre, clip="bikes", start=1)
        assert torch.equal(q.fw, fw[1:]) and torch.equal(q.noc, pairs.noc[1:])
        assert pre.pairs("bikes", 0, 3, (68, 160)).fw.shape == (3, 2, 68, 160)


def _flow_stage_as_of_wave1(est, frames: np.ndarray, batch: int = 8):
    """The training-set build's FlowStage.__call__ as it was before flow_pairs served it (trainset/stages.py
    at 261b3ad), transcribed: separate forward and backward calls per chunk of `batch` pairs, valid = occ < 0.5."""
    t = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
    fws, bws, valids = [], [], []
    with torch.no_grad():
        for s in range(0, len(frames) - 1, batch):
            a = t[s:min(s + batch, len(frames) - 1)]
            b = t[s + 1:min(s + batch, len(frames) - 1) + 1]
            fw, bw = est(a, b).float(), est(b, a).float()
            occ = occlusion_mask(fw, bw)
            fws.append(fw.permute(0, 2, 3, 1).numpy())
            bws.append(bw.permute(0, 2, 3, 1).numpy())
            valids.append((occ[:, 0] < 0.5).numpy())
    return np.concatenate(fws), np.concatenate(bws), np.concatenate(valids)


def test_flow_pairs_chunks_equal_the_build_stage_and_the_scorer_path(bikes_frames):
    """One function for builds and scoring: flow_pairs(keep_backward=True, chunk=8) gives the build's
    FlowStage output bit for bit (DIS runs per pair, so the fused fw+bw call changes nothing), any chunk
    size gives the same as one call, and the scorer's per-batch calls (each batch with the previous
    frame) give the same pairs as the whole clip."""
    est = get_estimator("dis")
    frames = to_t(bikes_frames)                                   # 6 frames, 5 pairs
    fw_ref, bw_ref, valid_ref = _flow_stage_as_of_wave1(est, bikes_frames)
    for chunk in (8, 2):                                          # one chunk; chunks of 2, 2, 1
        p = flow_pairs(frames, est, keep_backward=True, chunk=chunk)
        assert np.array_equal(p.fw.permute(0, 2, 3, 1).numpy(), fw_ref)
        assert np.array_equal(p.bw.permute(0, 2, 3, 1).numpy(), bw_ref)
        assert np.array_equal((p.noc[:, 0] > 0.5).numpy(), valid_ref)
        assert set(np.unique(p.noc.numpy())) <= {0.0, 1.0}
    whole = flow_pairs(frames, est)
    assert whole.bw is None
    assert torch.equal(whole.fw, p.fw) and torch.equal(whole.noc, p.noc)
    # the scorer: batches of 2 frames, each with the last frame of the batch before
    got = [flow_pairs(frames[0:2], est)]
    for s in range(2, 6, 2):
        got.append(flow_pairs(frames[s - 1:s + 2], est, start=s - 1))
    assert torch.equal(torch.cat([g.fw for g in got]), whole.fw)
    assert torch.equal(torch.cat([g.noc for g in got]), whole.noc)
    one = flow_pairs(frames[:1], est, keep_backward=True)
    assert one.fw.shape == one.bw.shape == (0, 2, 68, 160) and one.noc.shape == (0, 1, 68, 160)
    with pytest.raises(ValueError, match="chunk"):
        flow_pairs(frames, est, chunk=0)


def test_precomputed_flow_has_no_backward_flow_to_keep(tmp_path, bikes_frames):
    z = np.zeros((68, 160, 2), np.float32)
    _write_lai_layout(tmp_path, "c", [z] * 5, bws=[z] * 5)
    pre = get_estimator(str(tmp_path))
    assert flow_pairs(to_t(bikes_frames), pre, clip="c").fw.shape == (5, 2, 68, 160)
    with pytest.raises(ValueError, match="no backward flow"):
        flow_pairs(to_t(bikes_frames), pre, clip="c", keep_backward=True)


def test_precomputed_errors_name_the_missing_files(tmp_path):
    with pytest.raises(InputError, match="no fw_flow folder"):
        PrecomputedFlow(tmp_path)
    z = np.zeros((6, 8, 2), np.float32)
    _write_lai_layout(tmp_path, "c", [z, z])
    with pytest.raises(InputError, match="neither fw_occlusion nor bw_flow"):
        PrecomputedFlow(tmp_path)
    _write_lai_layout(tmp_path, "c", [z, z], bws=[z])
    pre = PrecomputedFlow(tmp_path)
    with pytest.raises(InputError) as ei:
        pre.pairs("c", 0, 2)
    assert "bw_flow/c/00001.flo" in str(ei.value)
    with pytest.raises(InputError) as ei:
        pre.pairs("other", 0, 1)
    assert "fw_flow/other/00000.flo" in str(ei.value)
    with pytest.raises(InputError, match="but the frames are"):
        pre.pairs("c", 0, 1, (7, 8))


# ------------------------------------------------------------------------------------------- GPU
@requires_gpu
@pytest.mark.gpu
def test_gpu_paths_equal_cpu(raft_weights, bikes_frames):
    from vcbench.flow.correlation import flownetc_correlation

    g = torch.Generator().manual_seed(4)
    img = torch.rand((2, 3, 20, 30), generator=g, dtype=torch.float64)
    flow = (torch.rand((2, 2, 20, 30), generator=g, dtype=torch.float64) - 0.5) * 10
    assert torch.allclose(backward_warp(img.cuda(), flow.cuda()).cpu(), backward_warp(img, flow), atol=1e-12)
    fw, bw = flow.float(), -flow.float()
    assert torch.equal(occlusion_mask(fw.cuda(), bw.cuda()).cpu(), occlusion_mask(fw, bw))
    x1, x2 = torch.randn((1, 64, 12, 20), generator=g), torch.randn((1, 64, 12, 20), generator=g)
    assert torch.allclose(flownetc_correlation(x1.cuda(), x2.cuda()).cpu(), flownetc_correlation(x1, x2), atol=1e-4)
    frames = np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in bikes_frames[:2]])
    a, b = to_t(frames[:1]), to_t(frames[1:])
    cpu = get_estimator("raft", "cpu", allow_unverified=True)(a, b)
    gpu = get_estimator("raft", "cuda", allow_unverified=True)(a.cuda(), b.cuda())
    assert gpu.device.type == "cuda" and (gpu.cpu() - cpu).abs().max() < 1e-2
