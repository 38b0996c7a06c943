"""Lai et al. (ECCV 2018) forward-backward occlusion test, as their `compute_flow_occlusion.py` runs it.

For the forward flow fw (t -> t+1) and backward flow bw (t+1 -> t), both computed on the GT video:

- w = bw warped to frame t along fw (`backward_warp(bw, fw)`, i.e. bw sampled at x + fw(x));
- inconsistent: |w + fw|^2 > 0.01 (|w|^2 + |fw|^2) + 0.5;
- motion boundary: |grad fw|^2 > 0.01 |fw|^2 + 0.002, where |grad fw|^2 sums the squared forward
  differences f(x) - f(x+1) of both flow components along x and along y (zero in the last column and
  row, as Lai's `compute_flow_gradients`);
- occluded = inconsistent OR boundary.

Lai's script calls `utils.detect_occlusion(bw_flow, fw_flow)` with the arguments in that order, so
inside the function its "bw_flow" is the forward flow: the gradient test and the warp both use fw,
as written above.
"""

from __future__ import annotations

import torch

from vcbench.flow.warp import backward_warp

CONSISTENCY_REL = 0.01
CONSISTENCY_ABS = 0.5
BOUNDARY_REL = 0.01
BOUNDARY_ABS = 0.002


def flow_gradient_sq(flow: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) sum of squared forward differences of u and v along x and y (0 past the edge).

    (dx_u^2 + dy_u^2) + (dx_v^2 + dy_v^2) per pixel, as `(dx.square() + dy.square()).sum(dim=1)`
    adds them, with the differences written into their zero-bordered buffers and squared in place.
    """
    dx = torch.zeros_like(flow)
    dy = torch.zeros_like(flow)
    torch.sub(flow[..., :, :-1], flow[..., :, 1:], out=dx[..., :, :-1])
    torch.sub(flow[..., :-1, :], flow[..., 1:, :], out=dy[..., :-1, :])
    return dx.square_().add_(dy.square_()).sum(dim=1, keepdim=True)


def _occluded(fw: torch.Tensor, bw: torch.Tensor) -> tuple[torch.Tensor, torch.dtype]:
    """Lai's test as a bool (N, 1, H, W) tensor, and the float dtype of the result.

    The same arithmetic as the formulas above, in the same order (so the same bits), with the
    temporaries reused in place: at 854x480 every (N, 2, H, W) float32 temporary is 3.3 MB a pair.
    """
    if fw.shape != bw.shape or fw.dim() != 4 or fw.shape[1] != 2:
        raise ValueError(f"fw and bw must both be (N,2,H,W), got {tuple(fw.shape)} and {tuple(bw.shape)}")
    dtype = fw.dtype if fw.is_floating_point() else torch.float32
    fw = fw.to(dtype)
    bw = bw.to(device=fw.device, dtype=dtype)
    w = backward_warp(bw, fw)
    mag = lambda f: f.square().sum(dim=1, keepdim=True)  # noqa: E731  (squared magnitude)
    fw_mag = mag(fw)
    rhs = mag(w).add_(fw_mag).mul_(CONSISTENCY_REL).add_(CONSISTENCY_ABS)
    inconsistent = w.add_(fw).square_().sum(dim=1, keepdim=True) > rhs
    boundary = flow_gradient_sq(fw) > fw_mag.mul_(BOUNDARY_REL).add_(BOUNDARY_ABS)
    return inconsistent.logical_or_(boundary), dtype


def occlusion_mask(fw: torch.Tensor, bw: torch.Tensor) -> torch.Tensor:
    """Lai's occlusion mask (N, 1, H, W), float, 1 = occluded, for fw (t -> t+1) and bw (t+1 -> t)."""
    occ, dtype = _occluded(fw, bw)
    return occ.to(dtype)


def non_occlusion_mask(fw: torch.Tensor, bw: torch.Tensor) -> torch.Tensor:
    """noc = 1 - occ: the pixels where warp error and flicker are measured."""
    occ, dtype = _occluded(fw, bw)
    return occ.logical_not_().to(dtype)
