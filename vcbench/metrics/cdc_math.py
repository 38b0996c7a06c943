"""CDC's arithmetic in numpy (Liu et al.'s TCVC `eval_results.py`): the one implementation both scorers call.

Per frame and channel a 256-bin histogram of the uint8 values divided by H*W (OpenCV's `calcHist`, as
TCVC counts; its float32 counts are exact integers below 2^24 pixels per bin, so larger frames count
with `np.bincount`); the Jensen-Shannon divergence (natural log, scipy's `entropy` form, which
renormalises both arguments) between frames i and i+d; a clip's value sum_d (1/3) mean_i over
d in (1, 2, 4), averaged over the channels, undefined (None) under 5 frames; and the per-frame list
of `vcbench score`, the d=1 divergence of each pair (t, t+1) averaged over channels.

The torch metric (`metrics.cdc.CDC`) and the torch-free scorer (`metrics.light`) both call these on
the same histograms, so their floats are identical. Every divergence is computed row by row (a row
is one pair and channel), so the value of a pair does not depend on how the frames were batched.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

DILATIONS: tuple[int, ...] = (1, 2, 4)
WEIGHTS: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)
#: Pixels per plane up to which calcHist's float32 counts are exact integers.
_CALCHIST_EXACT = 1 << 24


def plane_histograms(planes: Sequence[np.ndarray]) -> np.ndarray:
    """(C, 256) float64 histograms of C uint8 (H, W) planes of one frame, each divided by H*W."""
    h, w = planes[0].shape
    if h * w < _CALCHIST_EXACT:
        counts = [cv2.calcHist([p], [0], None, [256], [0, 256])[:, 0] for p in planes]
    else:
        counts = [np.bincount(p.ravel(), minlength=256) for p in planes]
    return np.array(counts, dtype=np.float64) / float(h * w)


def histograms(frames: np.ndarray) -> np.ndarray:
    """(N, C, 256) float64 histograms of uint8 (N, C, H, W) frames (`plane_histograms` per frame)."""
    frames = np.ascontiguousarray(frames)
    if frames.shape[0] == 0:
        return np.zeros((0, frames.shape[1], 256), dtype=np.float64)
    return np.stack([plane_histograms(list(f)) for f in frames])


def _kl(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sum x log(x / y) along the last axis, y renormalised, 0 log 0 = 0 (y > 0 wherever x > 0,
    because y is the mean of x and the other histogram)."""
    y = y / y.sum(axis=-1, keepdims=True)
    pos = x > 0
    ratio = np.divide(x, y, out=np.ones_like(x), where=pos)
    return (x * np.log(ratio)).sum(axis=-1)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log) along the last axis, as TCVC's JS_divergence with
    scipy.stats.entropy (which renormalises both arguments to sum 1)."""
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    m = (p + q) / 2
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


def pair_divergences(hists: np.ndarray) -> list[float]:
    """The d=1 divergence of each consecutive pair of (N, C, 256) histograms, averaged over channels
    (N - 1 values; the per-frame list `vcbench score` reports)."""
    if hists.shape[0] < 2:
        return []
    return [float(v) for v in js_divergence(hists[:-1], hists[1:]).mean(axis=1)]


def cdc_value(hists: np.ndarray) -> float | None:
    """TCVC's CDC of one clip from its (N, C, 256) histograms; None when N < 5 (the d=4 term needs 5)."""
    if hists.shape[0] < max(DILATIONS) + 1:
        return None
    total = np.zeros(hists.shape[1])
    for d, w in zip(DILATIONS, WEIGHTS):
        total += w * js_divergence(hists[:-d], hists[d:]).mean(axis=0)  # per channel: mean over i
    return float(total.mean())
