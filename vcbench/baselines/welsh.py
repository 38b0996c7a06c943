"""`welsh`: luminance-neighbourhood matching from the reference (Welsh, Ashikhmin & Mueller 2002).

"Transferring Color to Greyscale Images", global image matching, as the paper describes it, in CIE
Lab instead of l-alpha-beta (the frame's L is CIE L and is kept unchanged):

1. Luminance remapping: the reference's luminance is affinely mapped to the frame's global mean and
   standard deviation, L_r' = (L_r - mu_r) * sd_t / sd_r + mu_t, so that differing exposures match.
   The neighbourhood standard deviations scale by the same factor sd_t / sd_r.
2. Jittered sampling: the reference is cut into a grid of about `samples` (200) cells shaped like
   the image and one pixel is drawn uniformly inside each cell (fixed seed, so reruns are identical).
3. Matching: each frame pixel takes the chroma (a, b) of the sample that minimises
   w * (L - L_s')^2 + (1 - w) * (sd - sd_s')^2, where sd is the standard deviation of L over the
   `window` x `window` (5x5) neighbourhood (edges replicated) and w = 0.5 weighs luminance and
   neighbourhood statistics equally, as in the paper. Ties go to the lowest sample index.

Frames are matched independently (no temporal smoothing: this is the per-frame image method).
All reference images given are sampled, the grid budget split across them by area.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vcbench.baselines.base import Colorizer
from vcbench.baselines.reinhard import reference_lab
from vcbench.errors import InputError
from vcbench.lab import lab_to_rgb_uint8

# Pixels matched per step against all samples; bounds memory at chunk x samples floats.
_CHUNK = 1 << 16


def local_std(L: torch.Tensor, window: int) -> torch.Tensor:
    """Population standard deviation of (N, 1, H, W) luminance over window x window neighbourhoods."""
    pad = window // 2
    x = L - 50.0  # centring keeps E[x^2] - E[x]^2 well conditioned in float32
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    m = F.avg_pool2d(x, window, stride=1)
    m2 = F.avg_pool2d(x * x, window, stride=1)
    return (m2 - m * m).clamp_min(0).sqrt()


def jittered_grid(h: int, w: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of one uniformly drawn pixel per cell of a ~n-cell grid over (h, w)."""
    rows = max(1, min(h, round(math.sqrt(n * h / w))))
    cols = max(1, min(w, round(n / rows)))
    ys = torch.linspace(0, h, rows + 1).floor().long()
    xs = torch.linspace(0, w, cols + 1).floor().long()
    y0, y1 = ys[:-1], ys[1:].clamp_min(ys[:-1] + 1)
    x0, x1 = xs[:-1], xs[1:].clamp_min(xs[:-1] + 1)
    ry = torch.rand(rows, cols, generator=generator, dtype=torch.float64)
    rx = torch.rand(rows, cols, generator=generator, dtype=torch.float64)
    yy = (y0[:, None] + (ry * (y1 - y0)[:, None]).floor().long()).clamp(max=h - 1)
    xx = (x0[None, :] + (rx * (x1 - x0)[None, :]).floor().long()).clamp(max=w - 1)
    return yy.flatten(), xx.flatten()


class WelshMatcher:
    """The reference samples and the matching rule, shared by `welsh` and `propagate`'s refill."""

    def __init__(self, references: Sequence[np.ndarray], device: torch.device, *, samples: int = 200,
                 window: int = 5, weight: float = 0.5, seed: int = 0) -> None:
        if not references:
            raise InputError("this model needs a reference image but none was given",
                             hint="evaluate with --reference first-frame or --reference exemplar")
        if window < 1 or window % 2 == 0:
            raise InputError(f"welsh window must be an odd positive size, got {window}")
        self.window, self.weight = window, float(weight)
        gen = torch.Generator().manual_seed(int(seed))
        labs = [reference_lab(ref, device).float() for ref in references]
        area = sum(lab.shape[-2] * lab.shape[-1] for lab in labs)
        all_l = torch.cat([lab[0, 0].flatten() for lab in labs]).double()
        self.mu_r = float(all_l.mean())
        self.sd_r = float(all_l.std(unbiased=False))
        s_l, s_sd, s_ab = [], [], []
        for lab in labs:
            h, w = lab.shape[-2:]
            n = max(1, round(samples * h * w / area))
            yy, xx = jittered_grid(h, w, n, gen)
            yy, xx = yy.to(device), xx.to(device)
            sd = local_std(lab[:, :1], window)[0, 0]
            s_l.append(lab[0, 0, yy, xx])
            s_sd.append(sd[yy, xx])
            s_ab.append(lab[0, 1:, yy, xx])
        self.sample_l = torch.cat(s_l)          # (S,)
        self.sample_sd = torch.cat(s_sd)        # (S,)
        self.sample_ab = torch.cat(s_ab, 1)     # (2, S)

    def match(self, L: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ab (N, 2, H, W) for luminance (N, 1, H, W); with `mask` (N, 1, H, W) bool, only those
        pixels are matched (others are left 0) while the statistics still use the whole frame."""
        n, _, h, w_px = L.shape
        sd_map = local_std(L, self.window)
        out = torch.zeros(n, 2, h * w_px, device=L.device, dtype=torch.float32)
        for i in range(n):
            flat = L[i, 0].double().flatten()
            mu_t, sd_t = float(flat.mean()), float(flat.std(unbiased=False))
            scale = sd_t / self.sd_r if self.sd_r > 0 else 0.0
            s_l = ((self.sample_l.double() - self.mu_r) * scale + mu_t).float()
            s_sd = (self.sample_sd.double() * scale).float()
            # argmin_s w (L - L_s)^2 + (1 - w) (sd - sd_s)^2 drops the per-pixel terms and becomes one
            # matrix product: [L, sd, 1] . [-2w L_s, -2(1-w) sd_s, w L_s^2 + (1-w) sd_s^2]; float64
            # keeps the expanded squares exact enough that only true near-ties can resolve differently.
            w = self.weight
            s_l64, s_sd64 = s_l.double(), s_sd.double()
            coef = torch.stack([-2 * w * s_l64, -2 * (1 - w) * s_sd64, w * s_l64 ** 2 + (1 - w) * s_sd64 ** 2])
            feats = torch.stack([L[i, 0].flatten().double(), sd_map[i, 0].flatten().double(),
                                 torch.ones(h * w_px, device=L.device, dtype=torch.float64)], dim=1)
            idx_px = torch.arange(h * w_px, device=L.device) if mask is None else mask[i, 0].flatten().nonzero()[:, 0]
            for start in range(0, idx_px.numel(), _CHUNK):
                px = idx_px[start:start + _CHUNK]
                best = (feats[px] @ coef).argmin(dim=1)
                out[i, :, px] = self.sample_ab[:, best]
        return out.reshape(n, 2, h, w_px)


class Welsh(Colorizer):
    """Per-frame luminance + neighbourhood-statistics matching against jittered reference samples."""

    name = "welsh"
    description = "luminance/neighbourhood matching from the reference (Welsh et al. 2002)"
    batch_size = 8

    def __init__(self, device: str | torch.device = "cpu", *, samples: int = 200, window: int = 5,
                 weight: float = 0.5, seed: int = 0) -> None:
        super().__init__(device, samples=int(samples), window=int(window), weight=float(weight), seed=int(seed))
        self._matcher: WelshMatcher | None = None

    def start_clip(self, references: Sequence[np.ndarray]) -> None:
        o = self.options
        self._matcher = WelshMatcher(references, self.device, samples=o["samples"], window=o["window"],
                                     weight=o["weight"], seed=o["seed"])

    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        if self._matcher is None:
            raise RuntimeError("start_clip must be called before colorize")
        L = luminance.to(self.device, torch.float32)
        ab = self._matcher.match(L)
        return lab_to_rgb_uint8(torch.cat([L, ab], dim=1))
