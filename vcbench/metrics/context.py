"""Where a stream of batches stands in its clip, and what a batch shares with the metrics.

`FrameContext` is what one batch of one clip shares with every metric (the frames just before it,
GT flow, GT-side rows); `ClipCursor` makes those contexts: it holds the clip's previous predicted
and GT frame and the index of the next frame, and computes the batch's GT flow when it has a flow
source. The suite owns one cursor, so temporal metrics keep no previous frames of their own; a
metric used alone (`Metric.update` without a context) makes its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vcbench.flow.base import FlowEstimator
from vcbench.flow.pairs import FlowPairs, flow_pairs


@dataclass
class FrameContext:
    """What the scorer shares with metrics for one batch of one clip.

    `prev_pred` / `prev_gt` hold the clip's frame just before this batch (None at the clip's start),
    so temporal metrics see every pair once even when a clip is split over several batches.
    `pairs` holds the flow for those pairs: the pair (prev, batch[0]) first when `prev_*` is given,
    then (batch[i], batch[i+1]). `gt_cache` carries per-frame GT-side results (classifier labels,
    Inception features) that the scorer already has from its on-disk cache. `clip` is None only for
    a metric used alone whose clip has no name yet.
    """

    clip: str | None
    start: int = 0
    prev_pred: torch.Tensor | None = None
    prev_gt: torch.Tensor | None = None
    pairs: FlowPairs | None = None
    gt_cache: dict[str, torch.Tensor] = field(default_factory=dict)


class ClipCursor:
    """The position in the current clip: the next frame's index and the last predicted and GT frame.

    `flow`: the GT flow source; with one, `context` computes the batch's pairs (the pair from the
    previous batch's last frame first) unless they are given. `keep_copies`: `advance` keeps copies of
    the last frames, so a caller's batch storage is not held alive (a metric used alone); the suite
    keeps views, as its batches are its own.
    """

    def __init__(self, flow: FlowEstimator | None = None, *, keep_copies: bool = False) -> None:
        self.flow = flow
        self.keep_copies = keep_copies
        self.reset()

    def reset(self) -> None:
        """Back to the start of a clip."""
        self.start = 0
        self.prev_pred: torch.Tensor | None = None
        self.prev_gt: torch.Tensor | None = None

    def context(self, pred: torch.Tensor, gt: torch.Tensor, *, clip: str | None, pairs: FlowPairs | None = None,
                gt_cache: dict[str, torch.Tensor] | None = None) -> FrameContext:
        """The context of the batch (pred, gt) that follows the frames seen so far."""
        if pairs is None and self.flow is not None:
            seq = gt if self.prev_gt is None else torch.cat([self.prev_gt, gt])
            first = self.start - 1 if self.prev_gt is not None else self.start
            pairs = flow_pairs(seq, self.flow, clip=clip, start=first)
        return FrameContext(clip=clip, start=self.start, prev_pred=self.prev_pred, prev_gt=self.prev_gt, pairs=pairs,
                            gt_cache=dict(gt_cache or {}))

    @staticmethod
    def gt_context(ctx: FrameContext) -> FrameContext:
        """`ctx` as a GT twin sees it: the GT is the prediction (its previous frame too); the same flow
        and GT-side rows (the very dict, so rows computed for the metrics serve the twins)."""
        return FrameContext(clip=ctx.clip, start=ctx.start, prev_pred=ctx.prev_gt, prev_gt=ctx.prev_gt, pairs=ctx.pairs,
                            gt_cache=ctx.gt_cache)

    def advance(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        """Move past the batch (pred, gt): its last frames become the previous ones."""
        last_pred, last_gt = pred[-1:], gt[-1:]
        if self.keep_copies:
            last_pred, last_gt = last_pred.clone(), last_gt.clone()
        self.prev_pred, self.prev_gt = last_pred, last_gt
        self.start += int(gt.shape[0])
