"""Fast global smoother (Min et al., TIP 2014) as OpenCV contrib's `ximgproc` implements it.

DEVC filters its upsampled ab with `cv2.ximgproc.createFastGlobalSmootherFilter(guide, 500, 4)`.
OpenCV contrib is a separate wheel that replaces the usual `cv2`, so vcbench solves the same
systems itself. OpenCV's recipe (modules/ximgproc/src/fgs_filter.cpp), reproduced here:

- weights between 4-neighbours p, q of the uint8 guide: w = exp(-|I_p - I_q| / sigma_color)
  (Euclidean distance over channels for a 3-channel guide); no weight across the image border;
- one iteration = a horizontal pass then a vertical pass; each pass solves, for every row (column)
  independently, the tridiagonal system (1 + lam (w_{i-1} + w_i)) u_i - lam w_{i-1} u_{i-1}
  - lam w_i u_{i+1} = f_i;
- `num_iter` iterations (3), lam multiplied by `lambda_attenuation` (0.25) after each.

CPU: every row of a pass is one block of a single tridiagonal system (the weight across a row end
is zero), so one LAPACK banded solve (`scipy.linalg.solve_banded`) per pass handles the whole image
and both channels, in float64. GPU (or `backend="torch"`): parallel cyclic reduction, batched over
frames, channels and rows, log2(n) vectorised steps instead of n sequential Thomas steps, which is
what makes it fast on a GPU; float32, stable because the systems are diagonally dominant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.linalg import solve_banded


@dataclass(frozen=True)
class SmootherParams:
    lam: float = 500.0
    sigma_color: float = 4.0
    lambda_attenuation: float = 0.25
    num_iter: int = 3


DEVC_SMOOTHER = SmootherParams()


# ------------------------------------------------------------------------------------ weights
def guide_from_l(l: np.ndarray | torch.Tensor):
    """DEVC's guide: L * 255 / 100 truncated to uint8 (numpy float -> astype(uint8))."""
    if isinstance(l, torch.Tensor):
        return (l * 255.0 / 100.0).to(torch.uint8)
    return (np.asarray(l) * 255.0 / 100.0).astype(np.uint8)


def _edge_weights_np(guide: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(horizontal, vertical) weights: wh[i, j] links (i, j)-(i, j+1), wv[i, j] links (i, j)-(i+1, j)."""
    g = guide.astype(np.float64)
    if g.ndim == 2:
        g = g[..., None]
    h, w = g.shape[:2]
    wh = np.zeros((h, w))
    wv = np.zeros((h, w))
    wh[:, :-1] = np.exp(-np.sqrt(((g[:, 1:] - g[:, :-1]) ** 2).sum(-1)) / sigma)
    wv[:-1, :] = np.exp(-np.sqrt(((g[1:] - g[:-1]) ** 2).sum(-1)) / sigma)
    return wh, wv


# ------------------------------------------------------------------------------------ CPU
def _solve_rows_np(f: np.ndarray, weights: np.ndarray, lam: float) -> np.ndarray:
    """Solve every row of `f` (C, H, W) against the row weights (H, W), last column weight 0."""
    c, h, w = f.shape
    lw = lam * weights.ravel()  # coupling of each unknown to its right neighbour
    n = h * w
    ab = np.empty((3, n))
    ab[0, 0] = 0.0
    ab[0, 1:] = -lw[:-1]  # super-diagonal: entry (i, i+1)
    ab[2, :-1] = -lw[:-1]  # sub-diagonal: entry (i+1, i)
    ab[2, -1] = 0.0
    ab[1] = 1.0 + lw
    ab[1, 1:] += lw[:-1]
    rhs = f.reshape(c, n).T
    out = solve_banded((1, 1), ab, rhs, overwrite_ab=True, overwrite_b=False, check_finite=False)
    return out.T.reshape(c, h, w)


def fgs_filter_np(src: np.ndarray, guide: np.ndarray, params: SmootherParams = DEVC_SMOOTHER) -> np.ndarray:
    """Filter `src` ((H, W) or (C, H, W) float) guided by a uint8 (H, W) or (H, W, 3) image; float64 out."""
    if guide.dtype != np.uint8:
        raise TypeError(f"the guide must be uint8, got {guide.dtype}")
    squeeze = src.ndim == 2
    cur = np.array(src, dtype=np.float64, copy=True)
    if squeeze:
        cur = cur[None]
    if cur.shape[1:] != guide.shape[:2]:
        raise ValueError(f"image {cur.shape[1:]} and guide {guide.shape[:2]} differ in size")
    wh, wv = _edge_weights_np(guide, params.sigma_color)
    lam = params.lam
    for _ in range(params.num_iter):
        cur = _solve_rows_np(cur, wh, lam)
        cur = np.ascontiguousarray(_solve_rows_np(np.ascontiguousarray(cur.transpose(0, 2, 1)), np.ascontiguousarray(wv.T), lam).transpose(0, 2, 1))
        lam *= params.lambda_attenuation
    return cur[0] if squeeze else cur


# ------------------------------------------------------------------------------------ torch
def _edge_weights_torch(guide: torch.Tensor, sigma: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """guide (N, G, H, W) uint8 -> wh, wv (N, H, W) with a zero last column / row."""
    g = guide.to(dtype)
    dh = torch.sqrt(((g[..., :, 1:] - g[..., :, :-1]) ** 2).sum(1))
    dv = torch.sqrt(((g[..., 1:, :] - g[..., :-1, :]) ** 2).sum(1))
    wh = F.pad(torch.exp(-dh / sigma), (0, 1))
    wv = F.pad(torch.exp(-dv / sigma), (0, 0, 0, 1))
    return wh, wv


def _shift(x: torch.Tensor, s: int, fill: float, left: bool) -> torch.Tensor:
    # left=False: y[i] = x[i - s] (fill for i < s); left=True: y[i] = x[i + s] (fill past the end)
    if left:
        return F.pad(x[..., s:], (0, s), value=fill)
    return F.pad(x[..., :-s], (s, 0), value=fill)


def solve_tridiagonal_pcr(lower: torch.Tensor, diag: torch.Tensor, upper: torch.Tensor,
                          rhs: torch.Tensor) -> torch.Tensor:
    """Parallel cyclic reduction along the last dim: lower_i x_{i-1} + diag_i x_i + upper_i x_{i+1} = rhs_i.

    `lower[..., 0]` and `upper[..., -1]` must be 0. `rhs` may carry extra leading dims (channels)
    over which the coefficients broadcast.
    """
    a, b, c, d = lower, diag, upper, rhs
    n = b.shape[-1]
    s = 1
    while s < n:
        a_m, b_m, c_m, d_m = (_shift(t, s, v, False) for t, v in ((a, 0.0), (b, 1.0), (c, 0.0), (d, 0.0)))
        a_p, b_p, c_p, d_p = (_shift(t, s, v, True) for t, v in ((a, 0.0), (b, 1.0), (c, 0.0), (d, 0.0)))
        alpha = -a / b_m
        gamma = -c / b_p
        d = d + alpha * d_m + gamma * d_p
        b = b + alpha * c_m + gamma * a_p
        a = alpha * a_m
        c = gamma * c_p
        s *= 2
    return d / b


def _pass_torch(cur: torch.Tensor, weights: torch.Tensor, lam: float) -> torch.Tensor:
    # cur (N, C, H, W), weights (N, H, W) along the last dim
    lw = lam * weights
    left = _shift(lw, 1, 0.0, False)
    diag = 1.0 + lw + left
    return solve_tridiagonal_pcr((-left).unsqueeze(1), diag.unsqueeze(1), (-lw).unsqueeze(1), cur)


def fgs_filter_torch(src: torch.Tensor, guide: torch.Tensor, params: SmootherParams = DEVC_SMOOTHER) -> torch.Tensor:
    """Batched smoother: `src` (N, C, H, W) float, `guide` (N, 1 or 3, H, W) uint8; float32 (or src's
    float64) on src's device."""
    if guide.dtype != torch.uint8:
        raise TypeError(f"the guide must be uint8, got {guide.dtype}")
    if src.shape[0] != guide.shape[0] or src.shape[2:] != guide.shape[2:]:
        raise ValueError(f"image {tuple(src.shape)} and guide {tuple(guide.shape)} differ in size")
    dtype = torch.float64 if src.dtype == torch.float64 else torch.float32
    cur = src.to(dtype)
    wh, wv = _edge_weights_torch(guide.to(src.device), params.sigma_color, dtype)
    wv_t = wv.transpose(-1, -2)
    lam = params.lam
    for _ in range(params.num_iter):
        cur = _pass_torch(cur, wh, lam)
        cur = _pass_torch(cur.transpose(-1, -2), wv_t, lam).transpose(-1, -2)
        lam *= params.lambda_attenuation
    return cur.contiguous()


def fgs_filter(src: torch.Tensor, guide: torch.Tensor, params: SmootherParams = DEVC_SMOOTHER,
               backend: str = "auto") -> torch.Tensor:
    """Dispatch: scipy on the CPU (float64, then back to src's dtype), torch PCR on the GPU.

    `src` (N, C, H, W) float tensor, `guide` (N, 1, H, W) uint8 tensor on the same device.
    `backend`: "auto" (scipy on CPU, torch on CUDA), "scipy" or "torch".
    """
    if backend == "auto":
        backend = "torch" if src.is_cuda else "scipy"
    if backend == "torch":
        return fgs_filter_torch(src, guide, params).to(src.dtype)
    if backend != "scipy":
        raise ValueError(f"unknown smoother backend {backend!r} (auto, scipy, torch)")
    out = np.empty(tuple(src.shape), dtype=np.float64)
    src_np = src.detach().cpu().double().numpy()
    guide_np = guide.detach().cpu().numpy()
    for i in range(src_np.shape[0]):
        g = guide_np[i, 0] if guide_np.shape[1] == 1 else np.ascontiguousarray(guide_np[i].transpose(1, 2, 0))
        out[i] = fgs_filter_np(src_np[i], g, params)
    return torch.from_numpy(out).to(device=src.device, dtype=src.dtype)
