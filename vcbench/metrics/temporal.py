"""Temporal consistency along GT motion: warp error (Lai et al. 2018) and flicker.

Both look at consecutive output frames O_t, O_{t+1} through the forward flow fw_t (t -> t+1) estimated
on the GT video, and only where Lai's occlusion test says the motion is trustworthy (noc = 1 - occ):

- warp_error_t = sum(((warp(O_{t+1}, fw_t) - O_t) * noc)^2) / sum(noc), RGB in [0, 1], noc counted over
  the 3 channels, H*W*3 as the denominator when no pixel is non-occluded: Lai's `evaluate_WarpError.py`.
- flicker_t = sum(|warp(O_{t+1}, fw_t) - O_t| * noc) / sum(noc), RGB in 0..255, same counting. A
  property of the output alone (the GT clip itself scores a few units), reported beside the GT's own.

Everything is computed in float64 (frames, flow and the bilinear warp): Lai's code warps in float32,
which moves values by ~1e-6 relative; float64 is the definition without that rounding.

Per-frame values are per pair t (a clip of N frames has N-1); the clip value is their mean. The
scorer shares one GT flow computation through `FrameContext.pairs`; used standalone (a training loop
calling `update(pred, gt)`), the metric estimates GT flow itself with the estimator given at
construction (DIS by default). Pairs that straddle two batches are scored once, from `ctx.prev_*`
(the suite's `ClipCursor`, or the metric's own when used alone), so splitting a clip into batches
never changes the values.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch

from vcbench.errors import InputError
from vcbench.flow.pairs import FlowPairs, flow_pairs
from vcbench.flow.registry import get_estimator
from vcbench.flow.warp import backward_warp
from vcbench.metrics.base import Metric
from vcbench.metrics.context import FrameContext
from vcbench.metrics.sizing import frame_chunks
from vcbench.weights import WeightFile


def _check(first: torch.Tensor, second: torch.Tensor, pairs: FlowPairs) -> None:
    if first.shape != second.shape or first.dim() != 4 or first.shape[1] != 3:
        raise InputError(f"frames must be (P, 3, H, W) pairs of one shape, got {tuple(first.shape)} and {tuple(second.shape)}")
    p, _, h, w = first.shape
    if tuple(pairs.fw.shape) != (p, 2, h, w) or tuple(pairs.noc.shape) != (p, 1, h, w):
        raise InputError(f"flow {tuple(pairs.fw.shape)} / mask {tuple(pairs.noc.shape)} do not fit {p} frame pairs "
                         f"of {w}x{h}", hint="precomputed flow must be at the GT frames' resolution, one file per pair")


def _masked_mean(err: torch.Tensor, noc: torch.Tensor) -> torch.Tensor:
    """Per pair: sum(err) / (3 * sum(noc)), or / (H*W*3) where the mask is empty (Lai's rule)."""
    num = err.sum(dim=(1, 2, 3))
    den = noc.sum(dim=(1, 2, 3)) * err.shape[1]
    full = float(err.shape[1] * err.shape[2] * err.shape[3])
    return num / torch.where(den == 0, torch.full_like(den, full), den)


def warp_error_pairs(first: torch.Tensor, second: torch.Tensor, pairs: FlowPairs) -> torch.Tensor:
    """Lai's warping error (float64, one per pair) of uint8 frames O_t = first, O_{t+1} = second."""
    _check(first, second, pairs)
    a = first.to(torch.float64) / 255.0
    warped = backward_warp(second.to(torch.float64) / 255.0, pairs.fw.to(a.device))
    noc = pairs.noc.to(a.device, torch.float64)
    return _masked_mean(((warped - a) * noc).square(), noc)


def flicker_pairs(first: torch.Tensor, second: torch.Tensor, pairs: FlowPairs) -> torch.Tensor:
    """Mean absolute difference (0..255, float64, one per pair) of O_t and warp(O_{t+1}) on noc pixels."""
    _check(first, second, pairs)
    a = first.to(torch.float64)
    warped = backward_warp(second.to(torch.float64), pairs.fw.to(a.device))
    noc = pairs.noc.to(a.device, torch.float64)
    return _masked_mean((warped - a).abs() * noc, noc)


class _FlowPairMetric(Metric):
    """Shared plumbing: pairs across batch boundaries (from `ctx.prev_*`), GT flow from the context or
    computed here with the `flow` estimator (its standalone flow source)."""

    def __init__(self, device: str | torch.device = "cpu", *, flow: object = "dis", allow_unverified: bool = False) -> None:
        """`flow`: estimator name, folder of precomputed flow, or instance, used only when no
        `ctx.pairs` is given."""
        super().__init__()
        self.device = torch.device(device)
        self.estimator = get_estimator(flow, self.device, allow_unverified=allow_unverified)
        self._own_flow_used = False

    def weights_used(self) -> dict[str, WeightFile]:
        """The estimator's weights, when this metric estimated flow itself (else the scorer's count)."""
        return dict(self.estimator.weights_used()) if self._own_flow_used else {}

    @abstractmethod
    def _pair_values(self, first: torch.Tensor, second: torch.Tensor, pairs: FlowPairs) -> torch.Tensor:
        """One value per pair (first[i], second[i]) under pairs[i]."""

    def _chunked(self, seq: torch.Tensor, pairs: FlowPairs) -> torch.Tensor:
        """`_pair_values` of the consecutive pairs of `seq`, in chunks of pairs of bounded memory
        (float64 frames, warp and mask: ~144 bytes per pixel and pair)."""
        first, second = seq[:-1], seq[1:]
        per_pair = 144 * first.shape[-2] * first.shape[-1]
        vals = [self._pair_values(first[c], second[c], FlowPairs(fw=pairs.fw[c], noc=pairs.noc[c]))
                for c in frame_chunks(first.shape[0], per_pair, first.device)]
        return torch.cat(vals) if vals else torch.zeros(0, dtype=torch.float64, device=seq.device)

    @torch.no_grad()
    def accumulate(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext) -> None:
        if pred.shape != gt.shape:
            raise InputError(f"prediction {tuple(pred.shape)} and GT {tuple(gt.shape)} batches differ")
        prev_pred, prev_gt, start, pairs = ctx.prev_pred, ctx.prev_gt, ctx.start, ctx.pairs
        has_prev = prev_pred is not None and prev_gt is not None
        seq = torch.cat([prev_pred, pred]) if has_prev else pred
        if pairs is None:
            seq_gt = torch.cat([prev_gt, gt]) if has_prev else gt
            first = start - 1 if has_prev else start
            pairs = flow_pairs(seq_gt, self.estimator, clip=self._clip_name, start=first)
            self._own_flow_used = self._own_flow_used or seq_gt.shape[0] > 1
        if pairs.fw.shape[0] != seq.shape[0] - 1:
            raise InputError(f"{pairs.fw.shape[0]} flow pairs for {seq.shape[0]} consecutive frames "
                             f"(clip {self._clip_name or '?'}, frame {start})")
        if seq.shape[0] > 1:
            self._current.extend(float(v) for v in self._chunked(seq, pairs).cpu())


class WarpError(_FlowPairMetric):
    """Lai et al.'s warping error of the output along GT flow (lower is better)."""

    name: ClassVar[str] = "warp_error"

    def _pair_values(self, first: torch.Tensor, second: torch.Tensor, pairs: FlowPairs) -> torch.Tensor:
        return warp_error_pairs(first, second, pairs)


#: Per-frame GT flicker (of the pair ending at each frame; NaN for a clip's first) in the GT cache.
GT_FLICKER_KEY = "flicker_gt"


class Flicker(_FlowPairMetric):
    """Mean absolute change (0..255) of the output along GT flow on non-occluded pixels (lower is better).

    The GT clip's own flicker, the floor to report beside it, is the suite's GT twin. Its per-frame
    rows are this metric's GT side (`gt_side`, computed once per batch and cached by the scorer with
    the GT's flow), so the twin reads them (`update_gt`) instead of warping the GT again.
    """

    name: ClassVar[str] = "flicker"
    gt_side_key: ClassVar[str] = GT_FLICKER_KEY
    #: `gt_side` takes the batch's FrameContext (previous GT frame, GT flow) as well as the frames.
    gt_side_context: ClassVar[bool] = True

    def _pair_values(self, first: torch.Tensor, second: torch.Tensor, pairs: FlowPairs) -> torch.Tensor:
        return flicker_pairs(first, second, pairs)

    def _gt_rows(self, gt: torch.Tensor, prev_gt: torch.Tensor | None, pairs: FlowPairs) -> torch.Tensor:
        """(N,) float64: the GT's flicker of the pair ending at each frame of `gt`, NaN where none ends."""
        seq = torch.cat([prev_gt, gt]) if prev_gt is not None else gt
        rows = torch.full((gt.shape[0],), float("nan"), dtype=torch.float64)
        if seq.shape[0] > 1:
            rows[gt.shape[0] - (seq.shape[0] - 1):] = self._chunked(seq, pairs).cpu()
        return rows

    def gt_side(self, gt: torch.Tensor, ctx: FrameContext | None = None) -> torch.Tensor:
        """Per-frame GT flicker rows for the scorer's cache (ctx: the batch's previous GT frame and flow)."""
        if ctx is None or ctx.pairs is None:
            raise ValueError("the GT's flicker needs the batch's GT flow (ctx.pairs)")
        return self._gt_rows(gt, ctx.prev_gt, ctx.pairs)

    def update_gt(self, gt: torch.Tensor, ctx: FrameContext) -> None:
        """The GT's flicker from the batch's GT-side rows when the suite has them (the same values as
        `update(gt, gt, ctx)`, without warping the GT a second time)."""
        rows = ctx.gt_cache.get(GT_FLICKER_KEY)
        if rows is None:
            super().update_gt(gt, ctx)
            return
        if self._clip_name is None:
            self._clip_name = ctx.clip
        self._current.extend(float(v) for v in rows.cpu().tolist() if v == v)
