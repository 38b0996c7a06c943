"""Batched, differentiable sRGB (D65, 2 degree observer) <-> CIE Lab in torch.

The formulas and constants are exactly those of `skimage.color.rgb2lab` / `lab2rgb` (which DEVC and
most of the field call on the CPU), so that a model or metric running on the GPU sees the same Lab
values as the reference code: the sRGB matrix of IEC 61966-2-1, the 0.04045 / 0.0031308 gamma
thresholds, the 0.008856 / 7.787 Lab linear segment, the 0.2068966 inverse threshold, the D65 white
(0.95047, 1, 1.08883), and the clipping of negative Z (lab2xyz) and of RGB to [0, 1] (xyz2rgb).

Tensors carry the channel at dim -3 with any leading batch dims: (..., 3, H, W). float32 and
float64 both work, on any device; the dtype of the input is kept (as skimage keeps float32).
"""

from __future__ import annotations

import numpy as np
import torch

# sRGB primaries to XYZ, as written in skimage.color.colorconv (`xyz_from_rgb`).
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float64,
)
# skimage inverts the matrix numerically in float64; doing the same keeps the last digits equal.
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
D65_WHITE = (0.95047, 1.0, 1.08883)

_GAMMA_IN_THRESHOLD = 0.04045
_GAMMA_OUT_THRESHOLD = 0.0031308
_LAB_EPSILON = 0.008856
_LAB_KAPPA = 7.787
_LAB_OFFSET = 16.0 / 116.0
_LAB_INV_THRESHOLD = 0.2068966


def _check(x: torch.Tensor, what: str) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{what} must have shape (..., 3, H, W), got {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{what} must be a floating tensor, got {x.dtype} (use rgb_uint8_to_lab for uint8)")


def _matmul3(m: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    mt = torch.as_tensor(m, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", mt, x)


def _white(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(D65_WHITE, dtype=x.dtype, device=x.device).view(3, 1, 1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], (..., 3, H, W) float -> Lab (L in 0..100, a/b unscaled, about -128..128)."""
    _check(rgb, "rgb")
    # torch.where evaluates both branches: clamp the argument of each power so the branch that is
    # not taken never produces NaN gradients.
    lin = torch.where(
        rgb > _GAMMA_IN_THRESHOLD,
        ((rgb.clamp(min=_GAMMA_IN_THRESHOLD) + 0.055) / 1.055) ** 2.4,
        rgb / 12.92,
    )
    xyz = _matmul3(XYZ_FROM_RGB, lin) / _white(rgb)
    f = torch.where(
        xyz > _LAB_EPSILON,
        xyz.clamp(min=_LAB_EPSILON) ** (1.0 / 3.0),
        _LAB_KAPPA * xyz + _LAB_OFFSET,
    )
    fx, fy, fz = f.unbind(dim=-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab (..., 3, H, W) float -> sRGB clipped to [0, 1]; out-of-gamut colours clip like skimage."""
    _check(lab, "lab")
    L, a, b = lab.unbind(dim=-3)
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp(min=0.0)  # skimage sets negative z to 0 (with a warning)
    f = torch.stack([fx, fy, fz], dim=-3)
    xyz = torch.where(
        f > _LAB_INV_THRESHOLD,
        f.clamp(min=_LAB_INV_THRESHOLD) ** 3,
        (f - _LAB_OFFSET) / _LAB_KAPPA,
    ) * _white(lab)
    lin = _matmul3(RGB_FROM_XYZ, xyz)
    rgb = torch.where(
        lin > _GAMMA_OUT_THRESHOLD,
        1.055 * lin.clamp(min=_GAMMA_OUT_THRESHOLD) ** (1.0 / 2.4) - 0.055,
        lin * 12.92,
    )
    return rgb.clamp(0.0, 1.0)


def rgb_uint8_to_lab(rgb: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 RGB (..., 3, H, W) -> Lab in `dtype` (scaled by 1/255 first, like img_as_float)."""
    if rgb.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 tensor, got {rgb.dtype}")
    return rgb_to_lab(rgb.to(dtype) / 255.0)


def lab_to_rgb_uint8(lab: torch.Tensor) -> torch.Tensor:
    """Lab -> uint8 RGB via x255 and truncation toward zero, as `(lab2rgb(x) * 255).astype(uint8)`
    in the field's code (not rounding: a rounded output would differ from the published frames)."""
    return (lab_to_rgb(lab) * 255.0).to(torch.uint8)


# ---------------------------------------------------------------- numpy, channel-last convenience
def rgb2lab_np(rgb: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) RGB (uint8, or float in [0, 1]) -> float64 Lab, channel last, like skimage."""
    arr = np.asarray(rgb)
    x = torch.from_numpy(arr / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64))
    return rgb_to_lab(x.movedim(-1, -3)).movedim(-3, -1).numpy()


def lab2rgb_np(lab: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) Lab -> float64 RGB in [0, 1], channel last, like skimage."""
    x = torch.from_numpy(np.asarray(lab, dtype=np.float64))
    return lab_to_rgb(x.movedim(-1, -3)).movedim(-3, -1).numpy()
