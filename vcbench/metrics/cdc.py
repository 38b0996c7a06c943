"""Colour distribution consistency (CDC), Liu et al.'s TCVC `eval_results.py`.

Per frame and RGB channel, a 256-bin histogram of the uint8 values normalised by H*W; per dilation
d in (1, 2, 4), the Jensen-Shannon divergence (natural log, scipy's `entropy` form) between frames i
and i+d, averaged over i; the clip value is sum_d (1/3) * mean_i, averaged over the three channels.
A clip needs 5 frames for the d=4 term, so shorter clips are undefined (None). Dataset value: mean
over clips.

Only the (N, 3, 256) histograms are kept per clip, so memory does not grow with frame size and
batching cannot change the value. The per-frame list holds the d=1 divergence of each pair (t, t+1)
averaged over channels, a diagnostic: the clip value is not its mean.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from vcbench.errors import InputError
from vcbench.metrics.base import Metric
from vcbench.metrics.context import FrameContext

DILATIONS: tuple[int, ...] = (1, 2, 4)
WEIGHTS: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)


def channel_histograms(frames: torch.Tensor) -> torch.Tensor:
    """(N, 3, 256) float64 histograms of uint8 (N, 3, H, W) frames, each divided by H*W.

    On the CPU OpenCV's `calcHist` counts each plane (TCVC's own call; ~12x faster than a batched
    int64 bincount at 480p); its float32 counts are exact integers below 2^24 pixels per bin, so
    frames larger than that, and other devices, count with `torch.bincount`.
    """
    if frames.dtype != torch.uint8 or frames.dim() != 4:
        raise InputError(f"CDC takes uint8 (N, C, H, W) frames, got {frames.dtype} {tuple(frames.shape)}")
    n, c, h, w = frames.shape
    if frames.device.type == "cpu" and h * w < (1 << 24):
        import cv2

        arr = frames.contiguous().numpy()
        counts = np.array([[cv2.calcHist([arr[i, k]], [0], None, [256], [0, 256])[:, 0] for k in range(c)]
                           for i in range(n)], dtype=np.float64).reshape(n, c, 256)
        return torch.from_numpy(counts) / float(h * w)
    offsets = (torch.arange(n * c, device=frames.device) * 256).view(n, c, 1)
    idx = frames.reshape(n, c, h * w).to(torch.int64) + offsets
    counts = torch.bincount(idx.reshape(-1), minlength=n * c * 256).view(n, c, 256)
    return counts.to(torch.float64) / float(h * w)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (natural log) along the last axis, as TCVC's JS_divergence with
    scipy.stats.entropy (which renormalises both arguments to sum 1)."""
    p = p / p.sum(dim=-1, keepdim=True)
    q = q / q.sum(dim=-1, keepdim=True)
    m = (p + q) / 2

    def kl(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y / y.sum(dim=-1, keepdim=True)
        # x log(x / y) with 0 log 0 = 0; y > 0 wherever x > 0 because y = (x + other) / 2.
        terms = torch.where(x > 0, x * torch.log(torch.where(x > 0, x, 1.0) / torch.where(x > 0, y, 1.0)), 0.0)
        return terms.sum(dim=-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def cdc_from_histograms(hists: torch.Tensor) -> float | None:
    """TCVC's CDC of one clip from its (N, 3, 256) histograms; None when N < 5."""
    n = hists.shape[0]
    if n < max(DILATIONS) + 1:
        return None
    total = 0.0
    for d, w in zip(DILATIONS, WEIGHTS):
        js = js_divergence(hists[:-d], hists[d:])          # (N - d, 3)
        total += w * js.mean(dim=0)                         # per channel: mean over i
    return float(torch.as_tensor(total).mean())


class CDC(Metric):
    """Colour distribution consistency of the output clip (lower is better; undefined under 5 frames)."""

    name: ClassVar[str] = "cdc"

    def __init__(self, device: str | torch.device = "cpu", **_: object) -> None:
        super().__init__()
        self.device = torch.device(device)
        self._hists: list[torch.Tensor] = []

    def _reset_state(self) -> None:
        self._hists = []

    def _end_clip_state(self) -> None:
        self._hists = []

    @torch.no_grad()
    def accumulate(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext) -> None:
        h = channel_histograms(pred).cpu()
        seq = torch.cat([self._hists[-1][-1:], h]) if self._hists else h
        if seq.shape[0] > 1:
            self._current.extend(float(v) for v in js_divergence(seq[:-1], seq[1:]).mean(dim=1))
        self._hists.append(h)

    def _clip_value(self, values: list[float]) -> float | None:
        if not self._hists:
            return None
        return cdc_from_histograms(torch.cat(self._hists))
