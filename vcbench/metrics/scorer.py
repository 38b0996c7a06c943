"""The streaming scorer behind `vcbench score` and `vcbench evaluate`.

One pass over clip pairs: every GT and predicted frame is decoded once (by the caller of
`score_pairs`, which takes (GT batch, predicted batch) pairs: `vcbench evaluate` decodes each GT batch
for its models anyway; `score_dirs` and `score_streams` decode the GT here), re-cut to the scoring
batch, moved to the device and fed to every requested metric through one `MetricSuite`; GT-side work
(flow and occlusion, Inception features, classifier labels) comes from the on-disk cache when the same
GT was scored before. Only the current batch and the previous frame are held, so memory does not
grow with the number of clips (pooled FID statistics are running float64 sums inside the metric).

Pairing is checked before any heavy work (clip sets, frame counts, frame sizes), so a mistake in the
inputs costs seconds, not a scoring run.
"""

from __future__ import annotations

import itertools
import operator
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from vcbench.errors import InputError
from vcbench.flow.pairs import FlowPairs
from vcbench.frames import Clip, decoder_description
from vcbench.metrics.classification import LABELS_KEY
from vcbench.metrics.gt_cache import GTCache, clip_digest, entry_key, rows_tensor
from vcbench.metrics.pairing import ClipPair, check_labels, labels_record, pair_clips
from vcbench.metrics.protocol import scorer_fields
from vcbench.metrics.sizing import default_batch_size
from vcbench.metrics.result import ScoreResult
from vcbench.metrics.suite import MetricSuite, check_request, iter_chunks, to_frames_tensor
from vcbench.weights import digests

__all__ = ["ClipPair", "Scorer", "pair_clips"]


class _ClipCache:
    """GT-side cache entries of one clip: readers for what exists, writers for what is computed now.

    The GT flow entry holds one record per consecutive pair: the forward flow as float32 and Lai's
    non-occlusion mask, which is 0/1 by construction, as uint8 (9 bytes a pixel, not 12 with the mask
    as a third float32 channel). The layout is part of the entry key, so an entry of the former
    layout is never looked up, and `GTCache.load_as` refuses one of another dtype under the key.
    """

    #: Names the flow entry's layout in its key (entries written before it are a one-time miss).
    FLOW_LAYOUT = "records: fw float32 (2,H,W), noc uint8 (1,H,W)"

    @staticmethod
    def flow_dtype(size: tuple[int, int]) -> np.dtype:
        """The record of one pair of the GT flow entry for frames of `size` (H, W)."""
        return np.dtype([("fw", "<f4", (2, *size)), ("noc", "u1", (1, *size))])

    def __init__(self, cache: GTCache, suite: MetricSuite, clip: Clip, n: int, size: tuple[int, int],
                 resize_policy: str, digest_of: Callable[[Clip], str]):
        self.cache, self.suite, self.n = cache, suite, n
        self.flow: np.ndarray | None = None
        self.flow_writer = None
        self.feats: dict[str, np.ndarray] = {}
        self.feat_writers: dict[str, Any] = {}
        self.feat_keys: dict[str, str] = {}
        est = suite.estimator
        providers = suite.gt_side_providers()
        cache_flow = est is not None and not est.precomputed  # precomputed flow is already on disk
        if not cache.enabled or not (cache_flow or providers):
            return  # nothing of this run is cached: the GT's files need no hashing
        digest = digest_of(clip)
        if cache_flow:
            parts = {"estimator": est.name, "params": est.params, "weights": digests(est.weights_used()),
                     "size": list(size), "resize": resize_policy, "layout": self.FLOW_LAYOUT}
            key = entry_key("flow", digest, parts)
            shape, dtype = (max(n - 1, 0),), self.flow_dtype(size)
            self.flow = cache.load_as("flow", key, dtype, shape)
            if self.flow is None and n > 1:
                self.flow_writer = cache.writer("flow", key, shape, dtype)
        for fkey, provider in providers.items():
            parts = {"provider": type(provider).__name__, "weights": digests(provider.weights_used()), "size": list(size),
                     "resize": resize_policy}
            if "flow" in provider.needs:  # computed on the GT flow: keyed by the estimator
                if est is None or est.precomputed:  # precomputed flow files may change: not cached
                    continue
                parts["flow"] = {"estimator": est.name, "params": est.params, "weights": digests(est.weights_used())}
            key = entry_key(fkey, digest, parts)
            self.feat_keys[fkey] = key
            arr = cache.load(fkey, key, n)
            if arr is not None:
                self.feats[fkey] = arr

    def inputs(self, start: int, k: int, has_prev: bool, device: torch.device) -> tuple[FlowPairs | None, dict]:
        pairs = None
        if self.flow is not None:  # one copy out of the map per tensor, the mask widened to float32 on the way
            block = self.flow[start - 1 if has_prev else start:start + k - 1]
            pairs = FlowPairs(fw=rows_tensor(block["fw"]).to(device),
                              noc=rows_tensor(block["noc"], torch.float32).to(device))
        feats = {key: rows_tensor(arr[start:start + k]).to(device) for key, arr in self.feats.items()}
        return pairs, feats

    def store(self, ctx: Any, k: int) -> None:
        if self.flow_writer is not None and ctx.pairs is not None and ctx.pairs.fw.shape[0]:
            noc = ctx.pairs.noc.to(torch.uint8)
            if not torch.equal(noc, ctx.pairs.noc):  # lossless only for an exact 0/1 mask
                raise ValueError("the GT non-occlusion mask holds values other than 0 and 1: not cacheable as uint8")
            self.flow_writer.write_fields(ctx.pairs.fw.to(torch.float32).cpu().numpy(), noc.cpu().numpy())
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
        self._siblings: list[MetricSuite] = []  # the suites of streams 1.. of `score_pairs_many`
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
        """The suite that scores prediction stream `i` of `score_pairs_many` (0 is `suite`; the others
        are its siblings: same metrics, the same flow estimator and networks, their own state)."""
        while len(self._siblings) < i:
            self._siblings.append(self.suite.sibling())
        return self.suite if i == 0 else self._siblings[i - 1]

    @property
    def device(self) -> torch.device:
        return self.suite.device

    @property
    def metric_names(self) -> list[str]:
        """The metrics scored (requested and available)."""
        return list(self.suite.metrics)

    @property
    def unavailable(self) -> dict[str, str]:
        """Requested metrics that cannot run here, with the reason."""
        return dict(self.suite.unavailable)

    def protocol(self) -> dict[str, Any]:
        """The scoring protocol a run records (flow estimator and parameters, metric weights, ...)."""
        return self.suite.protocol()

    def batch_for(self, size: tuple[int, int]) -> int:
        """Frames per batch for a clip of frame size (H, W): `--batch-size`, else from the size and device."""
        if self.batch_size is not None:
            return self.batch_size
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
        counts = {p.name: p.n_frames for p in pairs}
        streams = ((p.gt, p.pred.iter_batches(self.batch_for(p.size), channels_first=True)) for p in pairs)
        # pair_clips checked the sizes, so without a resize a run that reads no GT pixel decodes no GT frame
        decode_gt = self.resize or self.reads_gt()
        return self._run(self._decoded(streams, counts, decode_gt), 1, total=sum(counts.values()), counts=counts,
                         labels=labels, digest_of=clip_digest)[0]

    def score_streams(self, streams: Iterable[tuple[Clip, Iterable[Any]]], *, total: int | None = None,
                      labels: Mapping[str, int] | None = None) -> ScoreResult:
        """Score predictions that arrive as frame batches (uint8, (B,H,W,3) or (B,3,H,W)), clip by clip.

        Each item is (GT clip, iterator of predicted batches of any size); the GT is decoded here, in
        the scoring batch. `labels` as in `score_dirs`.
        """
        if labels is not None:
            check_labels(labels, [])  # which clips come is known only as they arrive
        counts: dict[str, int] = {}  # filled as the clips arrive
        return self._run(self._decoded(streams, counts), 1, total=total, counts=counts, labels=labels,
                         digest_of=clip_digest)[0]

    def score_pairs(self, items: Iterable[tuple[Clip, Iterable[tuple[Any, Any]]]], *, total: int | None = None,
                    labels: Mapping[str, int] | None = None,
                    digest_of: Callable[[Clip], str] = clip_digest) -> ScoreResult:
        """Score (GT batch, predicted batch) pairs the caller decoded, clip by clip.

        Each item is (GT clip, iterable of (B, ...) batch pairs of equal length, any length, in frame
        order); the clip gives the name, frame count, size and files (the GT cache's key). Pairs are
        re-cut to the scoring batch, so the metrics see the batches `score_streams` would give them.
        `digest_of(clip)` is the clip's GT-cache content key (default: hash its files; a benchmark that
        hashed them already passes `Benchmark.clip_digest`, so no GT file is read twice).
        """
        return self.score_pairs_many(_one_each(items), 1, total=total, labels=labels, digest_of=digest_of)[0]

    def score_pairs_many(self, items: Iterable[tuple[Clip, Iterable[tuple[Any, Sequence[Any]]]]], n: int, *,
                         total: int | None = None, labels: Mapping[str, int] | None = None,
                         digest_of: Callable[[Clip], str] = clip_digest) -> list[ScoreResult]:
        """Score `n` predictions of the same GT in one pass (several models in one `vcbench evaluate`).

        Each item is (GT clip, iterable of (GT batch, one predicted batch per prediction)). Each GT
        batch is used once for all `n`, and so is its GT-side work (flow and occlusion, Inception
        features, the GT's classes and flicker), computed or read from the GT cache: `suite_for(0)`
        computes it and `suite_for(1..)` receive the very same tensors, so each result equals a
        separate run's. `digest_of` as in `score_pairs`.
        """
        if n < 1:
            raise ValueError("score_pairs_many needs at least one prediction per clip")
        if labels is not None:
            check_labels(labels, [])  # which clips come is known only as they arrive
        return self._run(items, n, total=total, counts=None, labels=labels, digest_of=digest_of)

    def _decoded(self, streams: Iterable[tuple[Clip, Iterable[Any]]], counts: dict[str, int],
                 decode_gt: bool = True) -> Iterator[tuple[Clip, Iterator[tuple[Any, list[Any]]]]]:
        """`score_pairs_many` items of (GT clip, predicted batches) streams: the GT decoded here in the
        scoring batch, each prediction re-cut to it; `counts` gets each clip's GT frame count. Without
        `decode_gt` (no metric reads a GT pixel: `reads_gt`) the prediction stands in for the GT frames
        nothing reads, so none is decoded; the frame counts are still checked."""
        for clip, pred_batches in streams:
            if clip.name not in counts:
                counts[clip.name] = clip.num_frames()
            batch = self.batch_for(clip.size())
            if decode_gt:
                yield clip, _paired(clip, pred_batches, batch, counts[clip.name])
            else:
                yield clip, ((pred, [pred]) for pred in iter_chunks(pred_batches, batch))

    def reads_gt(self) -> bool:
        """Whether scoring needs the GT's frames: a metric reads them (`MetricInfo.reads_gt`), or a GT
        twin, the GT flow or a GT side is computed from them (CDC alone needs none)."""
        suite = self.suite
        return (suite.needs_flow or bool(suite.gt_twins) or bool(suite.gt_side_providers())
                or any(m.spec.reads_gt for m in suite.metrics.values()))

    # ------------------------------------------------------------------------------ the pass
    def _run(self, items: Iterable[tuple[Clip, Iterable[tuple[Any, Sequence[Any]]]]], n_streams: int, *,
             total: int | None, counts: dict[str, int] | None, labels: Mapping[str, int] | None,
             digest_of: Callable[[Clip], str]) -> list[ScoreResult]:
        from tqdm import tqdm

        suites = [self.suite_for(i) for i in range(n_streams)]
        for suite in suites:
            suite.reset()
        bar = tqdm(total=total, unit="frame", desc="scoring", disable=not self.progress, dynamic_ncols=True)
        try:
            with torch.no_grad():  # not inference_mode: metrics memoise on tensor version counters
                for gt_clip, pairs in items:
                    n = counts[gt_clip.name] if counts is not None else gt_clip.num_frames()
                    label = None
                    if labels is not None:
                        if gt_clip.name not in labels:
                            raise InputError(f"no label for clip {gt_clip.name!r}", path=gt_clip.path,
                                             hint="give every clip its ImageNet class, or no labels at all")
                        label = int(labels[gt_clip.name])
                    self._score_clip(gt_clip, pairs, suites, n, bar, label, digest_of)
        finally:
            bar.close()
        extra = scorer_fields(self.batch_size, self.cache.enabled, labels)
        return [suite.result(decoder=decoder_description(), protocol_extra=extra) for suite in suites]

    def _score_clip(self, gt_clip: Clip, pairs: Iterable[tuple[Any, Sequence[Any]]], suites: Sequence[MetricSuite],
                    n: int, bar: Any, label: int | None, digest_of: Callable[[Clip], str]) -> None:
        lead = suites[0]  # computes (or reads from the GT cache) the GT side; the others get its tensors
        size = gt_clip.size()
        cc = _ClipCache(self.cache, lead, gt_clip, n, size, self._resize_policy(), digest_of)
        for suite in suites:
            suite.next_clip(gt_clip.name)
        t = 0
        try:
            for gt, preds in _recut(_checked(gt_clip, pairs, len(suites), n), len(suites), self.batch_for(size)):
                k = int(gt.shape[0])
                pairs_in, feats = cc.inputs(t, k, t > 0, lead.device)
                if label is not None:
                    feats[LABELS_KEY] = torch.full((k,), label, dtype=torch.long, device=lead.device)
                gt_t = to_frames_tensor(gt, lead.device)  # one device copy of the GT for every suite
                ctx = lead.update(preds[0], gt_t, pairs=pairs_in, gt_cache=feats, clip=gt_clip.name)
                for suite, pred in zip(suites[1:], preds[1:]):
                    suite.update(pred, gt_t, pairs=ctx.pairs, gt_cache=ctx.gt_cache, clip=gt_clip.name)
                cc.store(ctx, k)
                t += k
                bar.update(k)
            if t != n:
                raise InputError(f"clip {gt_clip.name}: the prediction has {t} frames but the GT has {n}",
                                 path=gt_clip.path, hint="predict exactly one frame per GT frame")
        except BaseException:
            cc.abort()
            raise
        cc.commit()
        for suite in suites:
            suite.end_clip(gt_clip.name)


def _one_each(items: Iterable[tuple[Clip, Iterable[tuple[Any, Any]]]]
              ) -> Iterator[tuple[Clip, Iterator[tuple[Any, list[Any]]]]]:
    """Items of (GT clip, (GT batch, predicted batch) pairs) in `score_pairs_many`'s shape."""
    for clip, pairs in items:
        yield clip, ((gt, [pred]) for gt, pred in pairs)


def _paired(clip: Clip, pred_batches: Iterable[Any], batch: int, n: int) -> Iterator[tuple[Any, list[Any]]]:
    """(GT batch, [predicted batch]) of one clip: the GT decoded in batches of `batch`, the prediction
    (batches of any size) re-cut to match; `_checked` finds a prediction of another length than the
    `n` GT frames, which ends here as a pair without GT (`None`)."""
    gt_iter = clip.iter_batches(batch, channels_first=True)  # the layout to_frames_tensor keeps as is
    t = 0
    for pred in iter_chunks(pred_batches, batch):
        gt = next(gt_iter, None)
        yield gt, [pred]
        if gt is None:
            return
        t += int(gt.shape[0])
    if t == n and next(gt_iter, None) is not None:  # the GT decodes more frames than its header says
        raise InputError(f"clip {clip.name}: the prediction has {t} frames but the GT has {n}",
                         path=clip.path, hint="predict exactly one frame per GT frame")


def _checked(clip: Clip, pairs: Iterable[tuple[Any, Sequence[Any]]], n_streams: int, n: int
             ) -> Iterator[tuple[Any, Sequence[Any]]]:
    """The pairs of one clip, each prediction as long as its GT batch, never past the `n` GT frames
    (a GT batch of None: the GT ended before the prediction)."""
    t = 0
    for gt, preds in pairs:
        if len(preds) != n_streams:
            raise ValueError(f"clip {clip.name}: {len(preds)} predictions, expected {n_streams}")
        k = 0 if gt is None else len(gt)
        for pred in preds:
            got = t + len(pred)
            if gt is None or max(got, t + k) > n:
                raise InputError(f"clip {clip.name}: the prediction has more frames than the {n} GT frames",
                                 path=clip.path, hint="predict exactly one frame per GT frame")
            if got != t + k:
                raise InputError(f"clip {clip.name}: the prediction has {got} frames where the GT has {t + k}",
                                 path=clip.path)
        yield gt, preds
        t += k


def _recut(pairs: Iterable[tuple[Any, Sequence[Any]]], n_streams: int, batch: int
           ) -> Iterator[tuple[Any, list[Any]]]:
    """Aligned pairs re-cut to exactly `batch` frames (the last may be short): the batches the metrics
    see do not depend on how the caller cut the clip (FID/KID float64 sums, LPIPS chunks, per-batch flow)."""
    copies = itertools.tee(pairs, n_streams + 1)
    gts = iter_chunks((gt for gt, _ in copies[0]), batch)
    preds = [iter_chunks(map(operator.itemgetter(i), (p for _, p in copy)), batch)
             for i, copy in enumerate(copies[1:])]
    for gt, *cut in zip(gts, *preds):
        yield gt, cut


def score_dirs(pred_dir: str | Path, gt_dir: str | Path, **kwargs: Any) -> ScoreResult:
    """Convenience: `Scorer(**kwargs).score_dirs(pred_dir, gt_dir)`."""
    return Scorer(**kwargs).score_dirs(pred_dir, gt_dir)
