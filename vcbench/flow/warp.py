"""The one warp of vcbench: backward bilinear sampling with clamped borders.

`backward_warp(img, flow)[.., y, x] = img[.., y + v(y, x), x + u(y, x)]`, bilinear, coordinates
clamped to the image. This is what FlowNet2's `Resample2d` layer does in Lai et al.'s warp-error code
(it clamps the four neighbours to the border), i.e. `grid_sample(align_corners=True,
padding_mode="border")`; metrics, occlusion masks and the baselines all call this one function so
that warp error, flicker and propagation agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sampling_grid(flow: torch.Tensor) -> torch.Tensor:
    """grid_sample's normalised (N, H, W, 2) grid for sampling at (x + u, y + v).

    Each coordinate is computed in place in its slot of the grid ((x + u) * 2 / (W - 1) - 1, the same
    operations in the same order, so bit-equal to the textbook form): no temporaries and no stacking
    copy, which at 480p in float64 was 0.5-0.7 s of a 12-pair batch's 1.2 s warp.
    """
    n, _, h, w = flow.shape
    grid = torch.empty((n, h, w, 2), dtype=flow.dtype, device=flow.device)
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
    for k, (base, side) in enumerate(((xs, w), (ys, h))):
        g = grid[..., k]
        torch.add(base, flow[:, k], out=g)
        # align_corners=True maps -1 and 1 to the centres of the first and last pixels.
        g.mul_(2.0 / max(side - 1, 1)).sub_(1.0)
    return grid


def backward_warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `img` (N, C, H, W) at (x + u, y + v) for `flow` (N, 2, H, W); returns `img`'s dtype.

    Integer inputs are sampled in float32 and returned as float32 (a bilinear mix is not an integer).
    """
    if img.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"expected img (N,C,H,W) and flow (N,2,H,W), got {tuple(img.shape)} and {tuple(flow.shape)}")
    if img.shape[0] != flow.shape[0] or img.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"img {tuple(img.shape)} and flow {tuple(flow.shape)} differ in batch or size")
    dtype = img.dtype if img.is_floating_point() else torch.float32
    img = img.to(dtype)
    flow = flow.to(device=img.device, dtype=dtype)
    if img.shape[0] == 0:
        return img.clone()
    grid = sampling_grid(flow)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)
