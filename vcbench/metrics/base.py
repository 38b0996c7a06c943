"""The streaming metric interface shared by `vcbench score`, `vcbench evaluate` and training loops.

Modelled on torchmetrics: each metric is one class holding its own state; `update` takes frames of
the current clip, `end_clip` closes a clip, `compute` gives the dataset value. Frames are uint8
tensors (N, 3, H, W), RGB, consecutive frames of one clip, on the metric's device. The scorer feeds
every metric from the same decoded frames (decode once) and passes shared GT-side work, such as flow
and occlusion, through `FrameContext` so it is computed once for all metrics that need it. A family
implements `accumulate(pred, gt, ctx)`; `update` gives it the context: the caller's, or, for a
metric used alone, one from the metric's own `ClipCursor` (the frames before the batch).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Generic, TypeVar

import torch

from vcbench.metrics.context import ClipCursor, FrameContext
from vcbench.metrics.registry import METRICS, MetricInfo
from vcbench.metrics.result import mean_of_clips, mean_or_none
from vcbench.weights import WeightFile

T = TypeVar("T")


class _ClassFact(Generic[T]):
    """A read-only attribute computed from the class (`Metric.spec` and the facts read from it), so
    `Top1.higher_is_better` and `metric.higher_is_better` both answer from the registry."""

    def __init__(self, fget: Callable[[Any], T]) -> None:
        self.fget = fget
        self.__doc__ = fget.__doc__

    def __get__(self, obj: object, owner: type) -> T:
        return self.fget(owner)


class Metric(ABC):
    """One metric family member; subclasses set `name` and implement `accumulate`.

    Every fact about a metric lives in its `MetricInfo` (metrics/registry.py), looked up by `name`
    when read, so a metric registered later (a test's, a plug-in's) is found too. The optional hooks
    the suite calls are declared here with their defaults.
    """

    name: ClassVar[str]

    @_ClassFact
    def spec(cls) -> MetricInfo:
        """This metric's registry entry."""
        return METRICS.spec(cls.name)

    #: True/False for the ranking direction; None where ranking is by closeness to the GT's value.
    higher_is_better = _ClassFact(lambda cls: cls.spec.higher_is_better)
    #: Shared inputs the scorer must prepare: "flow" (GT flow + occlusion).
    needs = _ClassFact(lambda cls: frozenset(cls.spec.needs))
    #: True for FID/KID: the dataset value pools all frames instead of averaging clip means.
    pooled = _ClassFact(lambda cls: cls.spec.pooled)
    #: Minimum frames per clip for a defined per-clip value (CDC needs 5).
    min_frames = _ClassFact(lambda cls: cls.spec.min_frames)

    #: Hook: the key of a per-frame GT-side quantity (`gt_side`) that the suite computes once per
    #: batch, shares through `FrameContext.gt_cache` and the scorer caches on disk; None: none.
    gt_side_key: ClassVar[str | None] = None
    #: A `gt_cache` key that, when given, makes `gt_side` unnecessary (true labels for the GT's top-1).
    gt_side_superseded_by: ClassVar[str | None] = None
    #: `gt_side` takes the batch's FrameContext as well as the frames (Flicker: the GT flow).
    gt_side_context: ClassVar[bool] = False

    def __init__(self) -> None:
        self.per_clip: dict[str, float | None] = {}
        self.per_frame: dict[str, list[float]] = {}
        self._current: list[float] = []
        self._clip_name: str | None = None
        self._cursor: ClipCursor | None = None  # only when used alone (no context given)

    # -- lifecycle ---------------------------------------------------------------------------
    def reset(self) -> None:
        self.per_clip.clear()
        self.per_frame.clear()
        self._current = []
        self._clip_name = None
        self._cursor = None
        self._reset_state()

    def _reset_state(self) -> None:
        """Clear metric-specific accumulators (override where there are any)."""

    # -- hooks -------------------------------------------------------------------------------
    def gt_side(self, gt: torch.Tensor, ctx: FrameContext | None = None) -> torch.Tensor:
        """One row per GT frame of the quantity `gt_side_key` names (metrics that set the key)."""
        raise NotImplementedError(f"{type(self).__name__} has no GT side (gt_side_key is None)")

    def notes(self) -> list[str]:
        """Why this run's value may mislead (FID below its frame floor); the protocol records them."""
        return []

    def weights_used(self) -> dict[str, WeightFile]:
        """The weight files this metric used ({file name: WeightFile})."""
        return {}

    def update(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext | None = None) -> None:
        """Add a batch of consecutive frames of the current clip. `ctx`: the batch's context from the
        suite; without it (a metric used alone) the metric's own cursor gives the frames before it."""
        if ctx is not None:
            if self._clip_name is None:
                self._clip_name = ctx.clip
            self.accumulate(pred, gt, ctx)
            return
        if self._cursor is None:
            self._cursor = ClipCursor(keep_copies=True)
        self.accumulate(pred, gt, self._cursor.context(pred, gt, clip=self._clip_name))
        self._cursor.advance(pred, gt)

    @abstractmethod
    def accumulate(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext) -> None:
        """The family's work on one batch of consecutive frames, given its context."""

    def update_gt(self, gt: torch.Tensor, ctx: FrameContext) -> None:
        """Feed this instance, a suite's GT twin, a batch of the GT as its own prediction: the one way
        the GT's own value is computed. Override where a GT side already holds the per-frame values."""
        self.update(gt, gt, ctx)

    def end_clip(self, clip: str | None = None) -> float | None:
        """Close the current clip; returns and records its value (None where undefined)."""
        name = clip or self._clip_name or f"clip{len(self.per_clip):05d}"
        values = self._clip_values()
        self.per_frame[name] = values
        value = self._clip_value(values)
        self.per_clip[name] = value
        self._current = []
        self._clip_name = None
        self._cursor = None
        self._end_clip_state()
        return value

    def _clip_values(self) -> list[float]:
        return list(self._current)

    def _clip_value(self, values: list[float]) -> float | None:
        return mean_or_none(values)

    def _end_clip_state(self) -> None:
        """Hook for metrics that carry per-clip state (previous frames, histograms)."""

    def compute(self) -> float | None:
        """Dataset value: mean over clips of the per-clip means (pooled metrics override)."""
        if self._current:
            self.end_clip()
        return mean_of_clips(self.per_clip)


class FrameMetric(Metric):
    """A metric with one value per frame from that frame's (pred, gt) alone (PSNR, SSIM, LPIPS,
    colourfulness); the clip value is the mean of its frames'."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.device = torch.device(device)

    @abstractmethod
    def frame_values(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """One value per frame of the batch (a 1-D tensor)."""

    def accumulate(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext) -> None:
        self._current.extend(float(v) for v in self.frame_values(pred, gt).cpu().tolist())
