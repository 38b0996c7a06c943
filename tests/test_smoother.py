"""The fast global smoother against an independent dense solve and against OpenCV contrib's output.

`tests/data/devc_fgs_opencv.npz` holds OpenCV contrib 4.13.0's `FastGlobalSmootherFilter` output
(lambda 500, sigma_color 4, defaults 0.25 / 3; plus lambda 30, sigma 7, 0.5, 2) on a crop of
scikit-image's `coffee`, made in a separate environment with
`python benchmarks/devc_official_compare.py fgs-fixture --out tests/data/devc_fgs_opencv.npz`
(opencv-contrib-python replaces the project's cv2, so it cannot run here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vcbench.baselines.devc.smoother import (DEVC_SMOOTHER, SmootherParams, _edge_weights_np, fgs_filter,
                                             fgs_filter_np, fgs_filter_torch, guide_from_l, solve_tridiagonal_pcr)

FIXTURE = Path(__file__).parent / "data" / "devc_fgs_opencv.npz"


def _dense_pass(f: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """Solve each row's system (I + lam * graph Laplacian of the row) with a dense matrix."""
    out = np.empty_like(f, dtype=np.float64)
    h, n = w.shape
    for i in range(h):
        a = np.eye(n)
        for j in range(n - 1):
            c = lam * w[i, j]
            a[j, j] += c
            a[j + 1, j + 1] += c
            a[j, j + 1] -= c
            a[j + 1, j] -= c
        out[:, i] = np.linalg.solve(a, f[:, i].T).T
    return out


def _dense_filter(src: np.ndarray, guide: np.ndarray, p: SmootherParams) -> np.ndarray:
    # exp(-|dI| / sigma) between 4-neighbours, as OpenCV's LUT computes it
    g = guide.astype(np.float64)
    wh = np.exp(-np.abs(np.diff(g, axis=1)) / p.sigma_color)
    wv = np.exp(-np.abs(np.diff(g, axis=0)) / p.sigma_color)
    wh = np.concatenate([wh, np.zeros((g.shape[0], 1))], 1)
    wv = np.concatenate([wv, np.zeros((1, g.shape[1]))], 0)
    cur, lam = src.astype(np.float64), p.lam
    for _ in range(p.num_iter):
        cur = _dense_pass(cur, wh, lam)
        cur = _dense_pass(cur.transpose(0, 2, 1), wv.T, lam).transpose(0, 2, 1)
        lam *= p.lambda_attenuation
    return cur


@pytest.fixture(scope="module")
def small_case():
    from skimage import color, data

    img = data.astronaut()[100:118:1, 180:203]  # 18 x 23 real texture
    lab = color.rgb2lab(img)
    guide = guide_from_l(lab[..., 0].astype(np.float32))
    rng = np.random.default_rng(1)
    src = (lab[..., 1:].transpose(2, 0, 1) + rng.normal(0, 10, (2,) + guide.shape)).astype(np.float32)
    return src, guide


def test_weights_are_exp_of_absolute_guide_difference():
    guide = np.array([[0, 4, 12], [8, 8, 0]], np.uint8)
    wh, wv = _edge_weights_np(guide, 4.0)
    np.testing.assert_allclose(wh, [[np.exp(-1), np.exp(-2), 0], [1, np.exp(-2), 0]])
    np.testing.assert_allclose(wv, [[np.exp(-2), np.exp(-1), np.exp(-3)], [0, 0, 0]])


def test_two_pixel_system_has_the_closed_form_solution():
    # (1 + c) u0 - c u1 = f0, -c u0 + (1 + c) u1 = f1 with c = lam * exp(-|dI|/sigma), one pass only
    p = SmootherParams(lam=3.0, sigma_color=4.0, lambda_attenuation=1.0, num_iter=1)
    guide = np.array([[10, 14]], np.uint8)
    f = np.array([[[1.0, 5.0]]])
    c = 3.0 * np.exp(-1.0)
    expected = np.linalg.solve([[1 + c, -c], [-c, 1 + c]], [1.0, 5.0])
    np.testing.assert_allclose(fgs_filter_np(f, guide, p)[0, 0], expected, rtol=1e-12)


@pytest.mark.parametrize("params", [DEVC_SMOOTHER, SmootherParams(30.0, 7.0, 0.5, 2)])
def test_scipy_and_torch_agree_with_dense_solves(small_case, params):
    src, guide = small_case
    dense = _dense_filter(src, guide, params)
    np.testing.assert_allclose(fgs_filter_np(src, guide, params), dense, atol=1e-9)
    t = fgs_filter_torch(torch.from_numpy(src)[None].double(), torch.from_numpy(guide)[None, None], params)[0].numpy()
    np.testing.assert_allclose(t, dense, atol=1e-8)
    t32 = fgs_filter_torch(torch.from_numpy(src)[None], torch.from_numpy(guide)[None, None], params)[0].numpy()
    assert np.abs(t32 - dense).max() < 2e-3  # float32, as OpenCV computes


def test_pcr_solves_random_diagonally_dominant_systems():
    g = torch.Generator().manual_seed(0)
    n = 37
    lower, upper = -torch.rand(5, n, generator=g, dtype=torch.float64), -torch.rand(5, n, generator=g, dtype=torch.float64)
    lower[:, 0] = 0
    upper[:, -1] = 0
    diag = 1 + lower.abs() + upper.abs() + torch.rand(5, n, generator=g, dtype=torch.float64)
    rhs = torch.randn(3, 5, n, generator=g, dtype=torch.float64)
    x = solve_tridiagonal_pcr(lower, diag, upper, rhs)
    for r in range(5):
        a = torch.diag(diag[r]) + torch.diag(lower[r, 1:], -1) + torch.diag(upper[r, :-1], 1)
        for c in range(3):
            torch.testing.assert_close(a @ x[c, r], rhs[c, r], rtol=0, atol=1e-10)


@pytest.mark.skipif(not FIXTURE.exists(), reason="OpenCV contrib fixture not generated")
def test_agrees_with_opencv_contrib_output():
    d = np.load(FIXTURE)
    src = d["src"]
    for key, guide, params in (("g1", d["guide"], DEVC_SMOOTHER), ("g3", d["guide3"], DEVC_SMOOTHER),
                               ("g1_other", d["guide"], SmootherParams(30.0, 7.0, 0.5, 2))):
        ours = fgs_filter_np(src, guide, params)
        assert np.abs(ours - d[key]).max() < 2e-3, key  # OpenCV works in float32
        g = torch.from_numpy(guide)
        g = g[None, None] if g.ndim == 2 else g.permute(2, 0, 1)[None]
        ours_t = fgs_filter_torch(torch.from_numpy(src)[None], g, params)[0].numpy()
        assert np.abs(ours_t - d[key]).max() < 2e-3, key
        # the filter really smooths: the output is far from the input
        assert np.abs(d[key] - src).mean() > 1.0


def test_dispatch_batches_frames_and_keeps_dtype(small_case):
    src, guide = small_case
    s = torch.from_numpy(np.stack([src, src[::-1].copy()]))
    g = torch.from_numpy(np.stack([guide, guide]))[:, None]
    out = fgs_filter(s, g)
    assert out.dtype == torch.float32 and out.shape == s.shape
    np.testing.assert_allclose(out[1].numpy(), fgs_filter_np(src[::-1], guide).astype(np.float32), atol=1e-5)
    torch.testing.assert_close(fgs_filter(s, g, backend="torch"), out, atol=2e-3, rtol=0)
    with pytest.raises(ValueError):
        fgs_filter(s, g, backend="opencv")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none here")
def test_gpu_smoother_matches_cpu(small_case):
    src, guide = small_case
    s, g = torch.from_numpy(src)[None], torch.from_numpy(guide)[None, None]
    gpu = fgs_filter(s.cuda(), g.cuda()).cpu()
    torch.testing.assert_close(gpu, fgs_filter(s, g), atol=2e-3, rtol=0)
