"""The whole metric suite as one object, for training loops and for the streaming scorer.

`MetricSuite` owns the metric instances (from the registry), the GT flow estimator and the per-clip
carry-over (previous frames), so that `vcbench score`, `vcbench evaluate` and a researcher's
validation loop compute the leaderboard's numbers with the same code: the scorer is a thin layer
over this class that adds decoding, input checks and the GT-side disk cache.

    suite = MetricSuite(["psnr", "ssim", "warp_error"], device="cuda")
    for clip in val_clips:
        for pred, gt in batches(clip):          # uint8 (N, 3, H, W) or (N, H, W, 3)
            suite.update(pred, gt)
        suite.end_clip(clip.name)
    print(suite.compute())                      # {"psnr": ..., "ssim": ..., "warp_error": ...}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from vcbench.devices import resolve_device
from vcbench.errors import InputError, WeightsError
from vcbench.flow.base import FlowEstimator
from vcbench.flow.pairs import FlowPairs
from vcbench.flow.registry import get_estimator, resolve_flow
from vcbench.metrics.base import Metric
from vcbench.metrics.context import ClipCursor, FrameContext
from vcbench.metrics.protocol import RESIZE_FILTER, protocol_record
from vcbench.metrics.registry import create_metric, get_info, metric_names
from vcbench.metrics.result import ScoreResult, _finite, clip_tables, gt_clip_table
from vcbench.weights import digests, unverified



# ------------------------------------------------------------------------------------ frames
def to_frames_tensor(x: Any, device: torch.device | str) -> torch.Tensor:
    """uint8 (N, 3, H, W) on `device` from a tensor/array shaped (N,3,H,W), (N,H,W,3), (3,H,W) or (H,W,3)."""
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor or numpy array of frames, got {type(x).__name__}")
    if t.dtype != torch.uint8:
        raise InputError(f"frames must be uint8 RGB (0..255), got {t.dtype}",
                         hint="convert with (x.clamp(0, 1) * 255).round().to(torch.uint8) or pass uint8 frames")
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4:
        raise InputError(f"frames must be 4-D (N, 3, H, W), got shape {tuple(t.shape)}")
    if t.shape[1] != 3 and t.shape[-1] == 3:
        t = t.permute(0, 3, 1, 2)
    if t.shape[1] != 3:
        raise InputError(f"frames must have 3 RGB channels, got shape {tuple(t.shape)}",
                         hint="grayscale or RGBA frames must be converted to RGB first")
    return t.to(device).contiguous()


def resize_to(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize uint8 (N,3,H,W) frames to (H, W) with RESIZE_FILTER (used only when asked for)."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    out = torch.nn.functional.interpolate(frames.float(), size=tuple(size), mode="bicubic", align_corners=False,
                                          antialias=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _create(name: str, device: torch.device, allow_unverified: bool, shared: dict[str, Any],
            flow: Any = None) -> Metric:
    """A registry metric; one `shared` dict per suite lets FID/KID share one Inception and top1/top5 one
    VGG19 (weights load once, each predicted batch goes through each network once)."""
    kw: dict[str, Any] = {"shared": shared}
    if allow_unverified:
        kw["allow_unverified"] = True
    if flow is not None:
        kw["flow"] = flow
    return create_metric(name, device, **kw)


def check_request(metrics: Sequence[str] | None, device: str | torch.device) -> tuple[torch.device, list[str]]:
    """Validate metric names and the device cheaply (before weights load or frames decode); the device
    as `vcbench.devices.resolve_device` reads it ("auto": the GPU when there is one)."""
    dev = resolve_device(device)
    known = list(metric_names())
    names = list(dict.fromkeys(metrics)) if metrics else known
    bad = [n for n in names if n not in known]
    if bad:
        raise InputError(f"unknown metric(s): {', '.join(bad)}", hint=f"choose from {', '.join(known)}")
    return dev, names


class MetricSuite:
    """All requested metrics fed from one stream of (pred, gt) batches; numbers equal `vcbench score`'s.

    `metrics`: names from `vcbench metrics list` (default: all). Metrics whose weights are missing go to
    `unavailable` with the error (which names the fetch command) unless `strict=True`, which raises.
    `flow`: GT flow estimator for warp_error/flicker (`dis`, `farneback`, `raft`, `flownet2`, or a folder
    of precomputed flow in Lai's layout). Frames are uint8 RGB, consecutive frames of one clip per call.
    `shared`: the dict that holds the loaded networks (FID/KID's Inception, top1/top5's VGG19); suites
    given one dict load each network once (`sibling`).
    """

    def __init__(self, metrics: Sequence[str] | None = None, *, device: str | torch.device = "cpu",
                 flow: str | Path | FlowEstimator = "dis", allow_unverified_weights: bool = False,
                 strict: bool = False, resize: bool = False, shared: dict[str, Any] | None = None):
        self.device, names = check_request(metrics, device)
        self.names = names
        if isinstance(flow, str):
            flow = resolve_flow(flow)  # "auto": the estimator it picks names the protocol, never "auto"
        self._flow = flow
        # `flow` is a name or folder for get_estimator, or an estimator object (e.g. a user's own subclass).
        self.flow_name = flow if isinstance(flow, str) else flow.name
        self.resize = resize
        self.allow_unverified = allow_unverified_weights
        self.strict = strict
        self.metrics: dict[str, Metric] = {}
        self.unavailable: dict[str, str] = {}
        # networks by (device, weights); a `sibling` passes its own, so they load once for several models
        self._shared: dict[str, Any] = {} if shared is None else shared
        flow_names = [n for n in names if "flow" in get_info(n).needs]
        self.estimator = None
        if flow_names:
            try:
                self.estimator = get_estimator(flow, self.device, allow_unverified=allow_unverified_weights)
            except WeightsError as exc:
                if strict:
                    raise
                for n in flow_names:
                    self.unavailable[n] = f"flow estimator {self.flow_name!r} unavailable: {exc}"
        for n in names:
            if n in self.unavailable:
                continue
            try:
                self.metrics[n] = _create(n, self.device, allow_unverified_weights, self._shared,
                                          self.estimator if n in flow_names else None)
            except WeightsError as exc:
                if strict:
                    raise
                self.unavailable[n] = str(exc)
        # The GT's own value of every metric whose spec asks for it: a second instance fed the GT as its
        # prediction (`Metric.update_gt`), in the registry's order (the order of `gt_metrics`).
        self.gt_twins: dict[str, Metric] = {n: _create(n, self.device, allow_unverified_weights, self._shared,
                                                       self.estimator if n in flow_names else None)
                                            for n in metric_names() if n in self.metrics and get_info(n).gt_twin}
        self.clip_frames: dict[str, int] = {}
        #: The clip's position and previous frames for every metric and twin (GT flow from `estimator`).
        self.cursor = ClipCursor(self.estimator)
        self._begin_clip()

    # ------------------------------------------------------------------------------- state
    def _begin_clip(self) -> None:
        self._values: dict[str, float | None] | None = None
        self._clip: str | None = None
        self.cursor.reset()

    def sibling(self) -> "MetricSuite":
        """A suite with fresh metric state for another model scored on the same GT in the same pass
        (`Scorer.score_pairs_many`): the same metrics and options, this suite's flow estimator and
        shared networks (loaded once), so its numbers are those of a suite built alone."""
        twin = MetricSuite(self.names, device=self.device, flow=self.estimator or self._flow,
                           allow_unverified_weights=self.allow_unverified, strict=self.strict, resize=self.resize,
                           shared=self._shared)
        twin.flow_name = self.flow_name
        return twin

    @property
    def needs_flow(self) -> bool:
        return self.estimator is not None

    def gt_side_providers(self) -> dict[str, Metric]:
        """Metrics that compute a per-frame GT-side quantity other metrics may share (first wins).

        A metric opts in with a `gt_side_key` and its `gt_side(gt) -> Tensor` giving one row per frame;
        it reads the value back from `ctx.gt_cache[key]` in `update`.
        """
        out: dict[str, Metric] = {}
        for m in self.metrics.values():
            key = m.gt_side_key
            if key and key not in out:
                out[key] = m
        return out

    # ------------------------------------------------------------------------------ feeding
    @torch.no_grad()
    def update(self, pred: Any, gt: Any, *, pairs: FlowPairs | None = None,
               gt_cache: dict[str, torch.Tensor] | None = None, clip: str | None = None) -> FrameContext:
        """Feed a batch of consecutive frames of the current clip; returns the context it built
        (the scorer stores its GT flow and GT-side features in the on-disk cache)."""
        pred = to_frames_tensor(pred, self.device)
        gt = to_frames_tensor(gt, self.device)
        if clip is not None and self._clip is None:
            self._clip = clip
        if pred.shape[0] != gt.shape[0]:
            raise InputError(f"clip {self._clip or '?'}: a batch has {pred.shape[0]} predicted and {gt.shape[0]} GT frames")
        if pred.shape[-2:] != gt.shape[-2:]:
            if not self.resize:
                raise InputError(f"clip {self._clip or '?'}: predicted frames are {pred.shape[-1]}x{pred.shape[-2]}, "
                                 f"GT frames {gt.shape[-1]}x{gt.shape[-2]}",
                                 hint="produce frames at the GT size, or pass --resize (resize=True) to resample them")
            pred = resize_to(pred, tuple(gt.shape[-2:]))
        if self.cursor.prev_gt is not None and self.cursor.prev_gt.shape[-2:] != gt.shape[-2:]:
            raise InputError(f"clip {self._clip or '?'}: frame size changes inside the clip",
                             hint="call end_clip() between clips")
        name = self._clip or f"clip{len(self.clip_frames):05d}"
        ctx = self.cursor.context(pred, gt, clip=name, pairs=pairs, gt_cache=gt_cache)
        for key, provider in self.gt_side_providers().items():
            # A GT side another input replaces (the GT's top-1 class where true labels are given) is not computed.
            if key not in ctx.gt_cache and provider.gt_side_superseded_by not in ctx.gt_cache:
                ctx.gt_cache[key] = provider.gt_side(gt, ctx) if provider.gt_side_context else provider.gt_side(gt)
        for n in list(self.metrics):
            self.metrics[n].update(pred, gt, ctx)
        if self.gt_twins:
            gt_ctx = ClipCursor.gt_context(ctx)
            for twin in self.gt_twins.values():
                twin.update_gt(gt, gt_ctx)
        self.cursor.advance(pred, gt)
        self._values = None
        return ctx

    def next_clip(self, name: str | None = None) -> None:
        """Close the current clip (if it has frames) and start a new one, optionally named."""
        if self.cursor.start:
            self.end_clip()
        self._begin_clip()
        self._clip = name

    def end_clip(self, name: str | None = None) -> dict[str, float | None]:
        """Close the current clip; returns its per-clip values."""
        name = name or self._clip or f"clip{len(self.clip_frames):05d}"
        if name in self.clip_frames:
            raise InputError(f"clip {name!r} was scored twice", hint="give each clip a unique name")
        values = {n: m.end_clip(name) for n, m in self.metrics.items()}
        for twin in self.gt_twins.values():
            twin.end_clip(name)
        self.clip_frames[name] = self.cursor.start
        self._begin_clip()
        return values

    def reset(self) -> None:
        for m in list(self.metrics.values()) + list(self.gt_twins.values()):
            m.reset()
        self.clip_frames.clear()
        self._begin_clip()

    # ----------------------------------------------------------------------------- results
    def compute(self) -> dict[str, float | None]:
        """Dataset values {metric: value} (None where undefined); closes an open clip first.

        Kept until the next update: FID's matrix square root costs seconds, and `result()` after
        `compute()` should not pay it twice.
        """
        if self.cursor.start:
            self.end_clip()
        if self._values is None:
            self._values = {n: _finite(m.compute()) for n, m in self.metrics.items()}
        return dict(self._values)

    def gt_values(self) -> dict[str, float | None]:
        """The GT's own dataset value of each metric with a GT twin (colourfulness, flicker)."""
        return {n: _finite(twin.compute()) for n, twin in self.gt_twins.items()}

    def gt_per_clip(self) -> dict[str, dict[str, float | None]]:
        """The GT's own per-clip values {clip: {metric: value}} of the metrics with a GT twin."""
        return gt_clip_table(self.gt_twins)

    def protocol(self, *, decoder: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The run's protocol record: what makes two runs' numbers comparable."""
        flow: dict[str, Any] | None = None
        weights: dict[str, str] = {}
        not_verified: list[str] = []
        if self.estimator is not None:
            flow = {"name": self.estimator.name, "params": dict(self.estimator.params)}
            weights.update(digests(self.estimator.weights_used()))
            not_verified += unverified(self.estimator.weights_used())
        for m in self.metrics.values():
            weights.update(digests(m.weights_used()))
            not_verified += unverified(m.weights_used())
        n_frames = sum(self.clip_frames.values())
        pooled = {n: n_frames for n, m in self.metrics.items() if m.pooled}
        # Metrics say themselves why a value may mislead (FID below its frame floor).
        notes = [note for m in self.metrics.values() for note in m.notes()]
        return protocol_record(flow=flow, flow_name=self.flow_name, decoder=decoder, resize=self.resize,
                               device=str(self.device), weights=weights, unverified=not_verified, pooled=pooled,
                               notes=notes, extra=extra)

    def result(self, *, decoder: str | None = None, protocol_extra: dict[str, Any] | None = None) -> ScoreResult:
        """A `ScoreResult` of everything fed so far (closes an open clip)."""
        values = self.compute()
        per_clip, per_frame = clip_tables({n: m for n, m in self.metrics.items() if not m.pooled}, self.clip_frames)
        return ScoreResult(
            metrics={n: values.get(n) for n in self.names},
            unavailable=dict(self.unavailable),
            gt_metrics=self.gt_values(),
            gt_per_clip=self.gt_per_clip(),
            per_clip=per_clip,
            per_frame=per_frame,
            protocol=self.protocol(decoder=decoder, extra=protocol_extra),
            n_clips=len(self.clip_frames),
            n_frames=sum(self.clip_frames.values()),
        )


def iter_chunks(batches: Iterable[Any], n: int) -> Iterable[np.ndarray | torch.Tensor]:
    """Re-cut a stream of frame batches (any sizes) into batches of exactly `n` (the last may be short)."""
    buf: list[Any] = []
    have = 0
    for b in batches:
        if isinstance(b, torch.Tensor) or isinstance(b, np.ndarray):
            if b.ndim == 3:
                b = b[None]
        buf.append(b)
        have += int(b.shape[0])
        while have >= n:
            cat = _cat(buf)
            yield cat[:n]
            rest = cat[n:]
            buf = [rest] if rest.shape[0] else []
            have -= n
    if have:
        yield _cat(buf)


def _cat(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    return torch.cat([torch.as_tensor(p) for p in parts])
