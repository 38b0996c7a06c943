"""`reinhard`: global colour-statistics transfer from the reference (Reinhard et al. 2001).

Reinhard et al. match, per channel of a decorrelated colour space, the mean and standard deviation
of a source image to those of a target: out = (src - mean_src) * std_ref / std_src + mean_ref. Here
the frame's L is given (and must be kept: it is the GT) while its chroma is unknown, so "the frame's
a,b statistics" do not exist. This baseline therefore transfers the reference's chroma statistics
through the only channel the frame has, luminance, in CIE Lab (the space the frame's L comes from):

1. Reinhard's luminance transfer puts the frame into the reference's luminance range:
   L' = (L - mu_L) * sd_Lr / sd_L + mu_Lr, with (mu_L, sd_L) the frame's global mean and population
   standard deviation and (mu_Lr, sd_Lr) the reference's.
2. In the reference, chroma is regressed on luminance by least squares, per channel c in {a, b}:
   c ~ mu_cr + beta_c (L_r - mu_Lr), beta_c = cov(c_r, L_r) / var(L_r).
3. The output chroma is that regression evaluated at L': c = mu_cr + beta_c (L' - mu_Lr)
   = mu_cr + rho_c * sd_cr * (L - mu_L) / sd_L.

So every frame gets the reference's global tint (mean a, b) plus the part of its chroma spread that
is explained by luminance (bright sky blue, dark foliage green), with Reinhard's global mean/std
matching done on L. Statistics are global and per frame, computed in float64; all reference pixels
(over all references) are pooled. A flat frame (sd_L = 0) or flat reference (sd_Lr = 0) gets the
mean tint only. The output L is the frame's own L, unchanged. Deterministic, no parameters.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from vcbench.baselines.base import Colorizer
from vcbench.errors import InputError
from vcbench.lab import lab_to_rgb_uint8, rgb_uint8_to_lab


def reference_lab(ref: np.ndarray, device: torch.device) -> torch.Tensor:
    """One RGB uint8 (H, W, 3) reference image as a (1, 3, H, W) float32 Lab tensor on `device`."""
    ref = np.asarray(ref)
    if ref.dtype != np.uint8 or ref.ndim != 3 or ref.shape[2] != 3:
        raise InputError(f"reference must be an RGB uint8 (H, W, 3) image, got {ref.shape} {ref.dtype}")
    # a copy: decoded frames may be read-only arrays, which torch.from_numpy must not alias
    t = torch.from_numpy(np.array(ref, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].to(device)
    return rgb_uint8_to_lab(t)


def reference_lab_pixels(references: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """All pixels of the reference image(s) as an (3, P) float64 Lab tensor."""
    if not references:
        raise InputError("this model needs a reference image but none was given",
                         hint="evaluate with --reference first-frame or --reference exemplar")
    return torch.cat([reference_lab(ref, device)[0].reshape(3, -1).double() for ref in references], dim=1)


class Reinhard(Colorizer):
    """Global Lab statistics transfer from the reference, conditioned on luminance (see module doc)."""

    name = "reinhard"
    description = "global Lab mean/std transfer from the reference (Reinhard et al. 2001), L kept"
    batch_size = 16

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)  # no options: nothing to tune

    def start_clip(self, references: Sequence[np.ndarray]) -> None:
        lab = reference_lab_pixels(references, self.device)
        mean = lab.mean(dim=1)
        centred = lab - mean[:, None]
        var_l = (centred[0] ** 2).mean()
        cov = (centred[1:] * centred[0]).mean(dim=1)
        # beta_c * sd_Lr = cov / sd_Lr: the chroma change per reference standard deviation of L.
        sd_l = var_l.sqrt()
        self._tint = mean[1:]                                              # (2,)
        self._slope = cov / sd_l if sd_l > 0 else torch.zeros_like(cov)    # (2,)

    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        L = luminance.to(self.device, torch.float32)
        flat = L.double().flatten(1)                                       # (N, HW)
        mu = flat.mean(dim=1)
        sd = flat.std(dim=1, unbiased=False)
        safe = torch.where(sd > 0, sd, torch.ones_like(sd))
        z = torch.where(sd[:, None] > 0, (flat - mu[:, None]) / safe[:, None], torch.zeros_like(flat))
        ab = self._tint[None, :, None] + self._slope[None, :, None] * z[:, None, :]   # (N, 2, HW)
        ab = ab.reshape(L.shape[0], 2, *L.shape[2:]).float()
        return lab_to_rgb_uint8(torch.cat([L, ab], dim=1))
