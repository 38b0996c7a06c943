"""The streaming scorer behind `vcbench score` and `vcbench evaluate`.

One pass over clip pairs: every GT and predicted frame is decoded once, moved to the device in
batches, and fed to every requested metric through one `MetricSuite`; GT-side work (flow and
occlusion, Inception features, classifier labels) comes from the on-disk cache when the same GT was
scored before. Only the current batch and the previous frame are held, so memory does not grow with
the number of clips (pooled FID statistics are running float64 sums inside the metric).

Pairing is checked before any heavy work (clip sets, frame counts, frame sizes), so a mistake in the
inputs costs seconds, not a scoring run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from vcbench.errors import InputError
from vcbench.flow.pairs import FlowPairs
from vcbench.frames import Clip, decoder_description, list_clips
from vcbench.metrics.classification import LABELS_KEY
from vcbench.metrics.gt_cache import GTCache, clip_digest, entry_key
from vcbench.metrics.result import ScoreResult
from vcbench.metrics.suite import MetricSuite, _weights_of, check_request, iter_chunks, to_frames_tensor

__all__ = ["ClipPair", "Scorer", "pair_clips"]


@dataclass
class ClipPair:
    """A predicted clip matched with its GT clip, with the GT's frame count and size."""

    name: str
    gt: Clip
    pred: Clip
    n_frames: int
    size: tuple[int, int]


def _names(clips: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(clips[:limit])
    return shown + (f" and {len(clips) - limit} more" if len(clips) > limit else "")


def pair_clips(pred_dir: str | Path, gt_dir: str | Path, *, resize: bool = False,
               images: bool = False) -> list[ClipPair]:
    """Match prediction clips to GT clips by name and check counts and sizes (headers only, no decode).

    `images`: both folders are image sets (each image a one-frame clip, paired by file stem).
    Raises `InputError` naming the missing/extra clips, the clip whose frame counts differ (with both
    counts), or the clip whose frame sizes differ (unless `resize`).
    """
    gt = list_clips(gt_dir, images=images)
    pred = {c.name: c for c in list_clips(pred_dir, images=images)}
    gt_names = [c.name for c in gt]
    missing = [n for n in gt_names if n not in pred]
    extra = [n for n in pred if n not in set(gt_names)]
    if missing:
        raise InputError(f"{len(missing)} GT clip(s) have no prediction: {_names(missing)}", path=pred_dir,
                         hint="produce frames for every GT clip (same clip names)")
    if extra:
        raise InputError(f"{len(extra)} prediction clip(s) have no GT clip: {_names(extra)}", path=pred_dir,
                         hint="remove them or point --gt at the matching set")
    pairs = []
    for g in gt:
        p = pred[g.name]
        ng, np_ = g.num_frames(), p.num_frames()
        if ng != np_:
            raise InputError(f"clip {g.name}: {np_} predicted frames but {ng} GT frames", path=p.path,
                             hint="predict exactly one frame per GT frame")
        sg, sp = g.size(), p.size()
        if sg != sp and not resize:
            raise InputError(f"clip {g.name}: predicted frames are {sp[1]}x{sp[0]} but GT frames are {sg[1]}x{sg[0]}",
                             path=p.path, hint="produce frames at the GT size, or pass --resize to resample them")
        pairs.append(ClipPair(g.name, g, p, ng, sg))
    return pairs


class _ClipCache:
    """GT-side cache entries of one clip: readers for what exists, writers for what is computed now."""

    def __init__(self, cache: GTCache, suite: MetricSuite, clip: Clip, n: int, size: tuple[int, int],
                 resize_policy: str):
        self.cache, self.suite, self.n = cache, suite, n
        self.flow: np.ndarray | None = None
        self.flow_writer = None
        self.feats: dict[str, np.ndarray] = {}
        self.feat_writers: dict[str, Any] = {}
        self.feat_keys: dict[str, str] = {}
        if not cache.enabled:
            return
        digest = clip_digest(clip)
        est = suite.estimator
        if est is not None and not hasattr(est, "pairs"):  # precomputed flow is already on disk
            parts = {"estimator": getattr(est, "name", suite.flow_name), "params": getattr(est, "params", {}),
                     "weights": _weights(est), "size": list(size), "resize": resize_policy}
            key = entry_key("flow", digest, parts)
            self.flow = cache.load("flow", key, max(n - 1, 0))
            if self.flow is None and n > 1:
                self.flow_writer = cache.writer("flow", key, (n - 1, 3, *size), np.float32)
        for fkey, provider in suite.gt_side_providers().items():
            parts = {"provider": type(provider).__name__, "weights": _weights(provider), "size": list(size),
                     "resize": resize_policy}
            if "flow" in provider.needs:  # computed on the GT flow: keyed by the estimator
                if est is None or hasattr(est, "pairs"):  # precomputed flow files may change: not cached
                    continue
                parts["flow"] = {"estimator": getattr(est, "name", suite.flow_name),
                                 "params": getattr(est, "params", {}), "weights": _weights(est)}
            key = entry_key(fkey, digest, parts)
            self.feat_keys[fkey] = key
            arr = cache.load(fkey, key, n)
            if arr is not None:
                self.feats[fkey] = arr

    def inputs(self, start: int, k: int, has_prev: bool, device: torch.device) -> tuple[FlowPairs | None, dict]:
        pairs = None
        if self.flow is not None:
            lo = start - 1 if has_prev else start
            block = torch.from_numpy(np.array(self.flow[lo:start + k - 1])).to(device)
            pairs = FlowPairs(fw=block[:, :2].contiguous(), noc=block[:, 2:3].contiguous())
        feats = {key: torch.from_numpy(np.array(arr[start:start + k])).to(device) for key, arr in self.feats.items()}
        return pairs, feats

    def store(self, ctx: Any, k: int) -> None:
        if self.flow_writer is not None and ctx.pairs is not None and ctx.pairs.fw.shape[0]:
            rows = torch.cat([ctx.pairs.fw.float(), ctx.pairs.noc.float()], dim=1).cpu().numpy()
            self.flow_writer.write(rows)
        for fkey, value in ctx.gt_cache.items():
            if fkey in self.feats or fkey not in self.feat_keys:
                continue
            rows = value.detach().cpu().numpy()
            w = self.feat_writers.get(fkey)
            if w is None:
                w = self.cache.writer(fkey, self.feat_keys[fkey], (self.n, *rows.shape[1:]), rows.dtype)
                if w is None:
                    self.feat_keys.pop(fkey)
                    continue
                self.feat_writers[fkey] = w
            w.write(rows)

    def commit(self) -> None:
        for w in [self.flow_writer, *self.feat_writers.values()]:
            if w is not None:
                w.commit()

    def abort(self) -> None:
        for w in [self.flow_writer, *self.feat_writers.values()]:
            if w is not None:
                w.abort()


def _weights(obj: Any) -> dict[str, str]:
    return _weights_of(obj)


class Scorer:
    """Score predicted clips against GT clips on every requested metric in one streaming pass.

    `metrics`: names (default all); `flow`: GT flow estimator (default `dis`, offline-safe; use
    `flownet2` for published numbers); `cache_dir`/`use_cache`: the GT-side cache; `resize`: resample
    predictions whose size differs from the GT (recorded in the protocol), otherwise such input is an error.
    """

    def __init__(self, metrics: Sequence[str] | None = None, *, device: str | torch.device = "cpu",
                 flow: Any = "dis", batch_size: int | None = None, cache_dir: str | Path | None = None,
                 use_cache: bool = True, resize: bool = False, allow_unverified_weights: bool = False,
                 progress: bool = True, strict: bool = False):
        if batch_size is not None and batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        check_request(metrics, device)
        self._suite_args = dict(metrics=metrics, device=device, flow=flow, resize=resize,
                                allow_unverified_weights=allow_unverified_weights, strict=strict)
        self._suite: MetricSuite | None = None
        self._siblings: list[MetricSuite] = []  # the suites of streams 1.. of `score_streams_many`
        #: Frames per decode batch; None: from each clip's frame size (`sizing.default_batch_size`).
        self.batch_size = int(batch_size) if batch_size is not None else None
        self.cache = GTCache(cache_dir, enabled=use_cache)
        self.resize = resize
        self.progress = progress

    @property
    def suite(self) -> MetricSuite:
        """The metric instances and flow estimator, built (weights loaded) on first use, so that input
        mistakes found by `pair_clips` are reported before any network is loaded."""
        if self._suite is None:
            args = dict(self._suite_args)
            self._suite = MetricSuite(args.pop("metrics"), **args)
        return self._suite

    def suite_for(self, i: int) -> MetricSuite:
        """The suite that scores prediction stream `i` of `score_streams_many` (0 is `suite`; the others
        are its siblings: same metrics, the same flow estimator and networks, their own state)."""
        while len(self._siblings) < i:
            self._siblings.append(self.suite.sibling())
        return self.suite if i == 0 else self._siblings[i - 1]

    @property
    def device(self) -> torch.device:
        return self.suite.device

    def batch_for(self, size: tuple[int, int]) -> int:
        """Frames per batch for a clip of frame size (H, W): `--batch-size`, else from the size and device."""
        if self.batch_size is not None:
            return self.batch_size
        from vcbench.metrics.sizing import default_batch_size

        return default_batch_size(size[0], size[1], self._suite_args["device"])

    def _resize_policy(self) -> str:
        return "pred->gt" if self.resize else "none"

    # ------------------------------------------------------------------------------- public
    def score_dirs(self, pred_dir: str | Path, gt_dir: str | Path, *, labels: Mapping[str, int] | None = None,
                   images: bool = False) -> ScoreResult:
        """Score a folder of predicted clips against a folder of GT clips (checked before any decode).

        `labels`: the true ImageNet class of each clip (top1/top5 are then accuracies; every clip needs
        one); `images`: both folders are image sets (see `pair_clips`).
        """
        pairs = pair_clips(pred_dir, gt_dir, resize=self.resize, images=images)
        if labels is not None:
            check_labels(labels, [p.name for p in pairs])
        streams = ((p.gt, [p.pred.iter_batches(self.batch_for(p.size))]) for p in pairs)
        return self._run(streams, 1, total=sum(p.n_frames for p in pairs), counts={p.name: p.n_frames for p in pairs},
                         labels=labels)[0]

    def score_streams(self, streams: Iterable[tuple[Clip, Iterable[Any]]], *, total: int | None = None,
                      labels: Mapping[str, int] | None = None) -> ScoreResult:
        """Score predictions that arrive as frame batches (uint8, (B,H,W,3) or (B,3,H,W)), clip by clip.

        This is what `vcbench evaluate` calls with a model's output, so frames need never be saved.
        Each item is (GT clip, iterator of predicted batches of any size); `labels` as in `score_dirs`.
        """
        return self.score_streams_many(((gt, [pred]) for gt, pred in streams), 1, total=total, labels=labels)[0]

    def score_streams_many(self, streams: Iterable[tuple[Clip, Sequence[Iterable[Any]]]], n: int, *,
                           total: int | None = None, labels: Mapping[str, int] | None = None) -> list[ScoreResult]:
        """Score `n` predictions of the same GT in one pass (several models in one `vcbench evaluate`).

        Each item is (GT clip, one iterator of predicted batches per prediction). Each GT batch is read
        once, and its GT-side work (flow and occlusion, Inception features, the GT's classes and
        flicker) is computed once, or read from the GT cache, for all `n`: `suite_for(0)` computes it
        and `suite_for(1..)` receive the very same tensors, so each result equals a separate run's.
        """
        if n < 1:
            raise ValueError("score_streams_many needs at least one prediction per clip")
        if labels is not None:
            check_labels(labels, [])  # which clips come is known only as they arrive
        return self._run(streams, n, total=total, counts=None, labels=labels)

    # ------------------------------------------------------------------------------ the pass
    def _run(self, streams: Iterable[tuple[Clip, Sequence[Iterable[Any]]]], n_streams: int, *, total: int | None,
             counts: dict[str, int] | None, labels: Mapping[str, int] | None = None) -> list[ScoreResult]:
        from tqdm import tqdm

        suites = [self.suite_for(i) for i in range(n_streams)]
        for suite in suites:
            suite.reset()
        kinds: set[str] = set()
        bar = tqdm(total=total, unit="frame", desc="scoring", disable=not self.progress, dynamic_ncols=True)
        try:
            with torch.no_grad():  # not inference_mode: metrics memoise on tensor version counters
                for gt_clip, pred_batches in streams:
                    kinds.add(gt_clip.kind)
                    n = counts[gt_clip.name] if counts else gt_clip.num_frames()
                    label = None
                    if labels is not None:
                        if gt_clip.name not in labels:
                            raise InputError(f"no label for clip {gt_clip.name!r}", path=gt_clip.path,
                                             hint="give every clip its ImageNet class, or no labels at all")
                        label = int(labels[gt_clip.name])
                    if len(pred_batches) != n_streams:
                        raise ValueError(f"clip {gt_clip.name}: {len(pred_batches)} predictions, expected {n_streams}")
                    self._score_clip(gt_clip, pred_batches, suites, n, bar, label)
        finally:
            bar.close()
        batch = self.batch_size if self.batch_size is not None else "auto (from frame size and device)"
        extra: dict[str, Any] = {"batch_size": batch, "gt_cache": "on" if self.cache.enabled else "off"}
        if labels is not None:
            extra["labels"] = labels_record(labels)
        return [suite.result(decoder=decoder_description(), protocol_extra=extra) for suite in suites]

    def _score_clip(self, gt_clip: Clip, pred_streams: Sequence[Iterable[Any]], suites: Sequence[MetricSuite],
                    n: int, bar: Any, label: int | None = None) -> None:
        lead = suites[0]  # computes (or reads from the GT cache) the GT side; the others get its tensors
        size = gt_clip.size()
        cc = _ClipCache(self.cache, lead, gt_clip, n, size, self._resize_policy())
        for suite in suites:
            suite.next_clip(gt_clip.name)
        t = 0
        batch = self.batch_for(size)
        try:
            gt_iter = gt_clip.iter_batches(batch)
            chunks = [iter(iter_chunks(p, batch)) for p in pred_streams]
            while True:
                preds = [next(c, None) for c in chunks]
                if all(p is None for p in preds):
                    break
                k = max(int(p.shape[0]) for p in preds if p is not None)
                gt = next(gt_iter, None)
                if gt is None or t + k > n:
                    raise InputError(f"clip {gt_clip.name}: the prediction has more frames than the {n} GT frames",
                                     path=gt_clip.path, hint="predict exactly one frame per GT frame")
                for pred in preds:
                    got = t + (0 if pred is None else int(pred.shape[0]))
                    if got != t + gt.shape[0]:
                        raise InputError(f"clip {gt_clip.name}: the prediction has {got} frames where the GT has "
                                         f"{t + gt.shape[0]}", path=gt_clip.path)
                pairs, feats = cc.inputs(t, k, t > 0, lead.device)
                if label is not None:
                    feats[LABELS_KEY] = torch.full((k,), label, dtype=torch.long, device=lead.device)
                gt_t = to_frames_tensor(gt, lead.device)  # one device copy of the GT for every suite
                ctx = lead.update(preds[0], gt_t, pairs=pairs, gt_cache=feats, clip=gt_clip.name)
                for suite, pred in zip(suites[1:], preds[1:]):
                    suite.update(pred, gt_t, pairs=ctx.pairs, gt_cache=ctx.gt_cache, clip=gt_clip.name)
                cc.store(ctx, k)
                t += k
                bar.update(k)
            if t != n or next(gt_iter, None) is not None:
                raise InputError(f"clip {gt_clip.name}: the prediction has {t} frames but the GT has {n}",
                                 path=gt_clip.path, hint="predict exactly one frame per GT frame")
        except BaseException:
            cc.abort()
            raise
        cc.commit()
        for suite in suites:
            suite.end_clip(gt_clip.name)


def check_labels(labels: Mapping[str, int], clips: Sequence[str]) -> None:
    """Every label an ImageNet-1k class index, every clip in `clips` labelled (InputError otherwise)."""
    bad = [(k, v) for k, v in labels.items() if isinstance(v, bool) or not isinstance(v, (int, np.integer))
           or not 0 <= int(v) < 1000]
    if bad:
        raise InputError(f"label of {bad[0][0]!r} is {bad[0][1]!r}, not an ImageNet-1k class index (0..999)",
                         hint="labels are ILSVRC2012 class indices, as in the ctest10k list")
    missing = [c for c in clips if c not in labels]
    if missing:
        raise InputError(f"{len(missing)} clip(s) have no label: {_names(missing)}",
                         hint="give every clip its ImageNet class, or no labels at all")


def labels_record(labels: Mapping[str, int]) -> dict[str, Any]:
    """What the protocol records of the labels: how many, and a digest of the (name, class) pairs."""
    import hashlib

    text = "".join(f"{k}\t{int(labels[k])}\n" for k in sorted(labels))
    return {"n": len(labels), "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "meaning": "top1/top5 are accuracies against these ImageNet-1k class indices"}


def score_dirs(pred_dir: str | Path, gt_dir: str | Path, **kwargs: Any) -> ScoreResult:
    """Convenience: `Scorer(**kwargs).score_dirs(pred_dir, gt_dir)`."""
    return Scorer(**kwargs).score_dirs(pred_dir, gt_dir)
