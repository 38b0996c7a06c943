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
from vcbench.metrics.cdc_math import DILATIONS, WEIGHTS, cdc_value, histograms, js_divergence, pair_divergences
from vcbench.metrics.context import FrameContext

__all__ = ["CDC", "DILATIONS", "WEIGHTS", "channel_histograms", "js_divergence"]


def channel_histograms(frames: torch.Tensor) -> torch.Tensor:
    """(N, 3, 256) float64 histograms of uint8 (N, 3, H, W) frames, each divided by H*W.

    On the CPU `cdc_math.histograms` counts each plane (OpenCV's `calcHist`, TCVC's own call; ~12x
    faster than a batched int64 bincount at 480p); on other devices the frames are counted where they
    are with `torch.bincount` (the same integers, so the same histograms).
    """
    if frames.dtype != torch.uint8 or frames.dim() != 4:
        raise InputError(f"CDC takes uint8 (N, C, H, W) frames, got {frames.dtype} {tuple(frames.shape)}")
    n, c, h, w = frames.shape
    if frames.device.type == "cpu":
        return torch.from_numpy(histograms(frames.contiguous().numpy()))
    offsets = (torch.arange(n * c, device=frames.device) * 256).view(n, c, 1)
    idx = frames.reshape(n, c, h * w).to(torch.int64) + offsets
    counts = torch.bincount(idx.reshape(-1), minlength=n * c * 256).view(n, c, 256)
    return counts.to(torch.float64) / float(h * w)


class CDC(Metric):
    """Colour distribution consistency of the output clip (lower is better; undefined under 5 frames).

    The arithmetic is `metrics.cdc_math`'s, on the histograms kept per clip; the torch-free scorer
    (`metrics.light`) calls the same functions, so both give the same floats."""

    name: ClassVar[str] = "cdc"

    def __init__(self, device: str | torch.device = "cpu", **_: object) -> None:
        super().__init__()
        self.device = torch.device(device)
        self._hists: list[np.ndarray] = []

    def _reset_state(self) -> None:
        self._hists = []

    def _end_clip_state(self) -> None:
        self._hists = []

    @torch.no_grad()
    def accumulate(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext) -> None:
        h = channel_histograms(pred).cpu().numpy()
        seq = np.concatenate([self._hists[-1][-1:], h]) if self._hists else h
        self._current.extend(pair_divergences(seq))
        self._hists.append(h)

    def _clip_value(self, values: list[float]) -> float | None:
        if not self._hists:
            return None
        return cdc_value(np.concatenate(self._hists))
