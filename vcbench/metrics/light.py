"""The torch-free scorer: `vcbench score` for metrics that are integer and histogram arithmetic on uint8.

CDC and colourfulness need neither torch nor a GPU, yet on the streaming scorer (`metrics.scorer`)
importing torch alone costs about a second of a run that scores 96 frames at 854x480 in well under
one. `vcbench score` takes this path by itself when every requested metric has a torch-free
implementation here (`LIGHT_METRICS`), on the CPU and without `--resize` (`light_request`); the
result is the streaming scorer's byte for byte (values, per-clip and per-frame lists, the GT's own
values, the protocol), because every piece is the same code: the pairing checks (`metrics.pairing`),
the decoder and its checks (`frames.Clip.iter_frames`), the arithmetic (`metrics.cdc_math`,
`metrics.colorfulness_math`, which the torch metrics call too), the dataset means (`metrics.result`)
and the protocol (`metrics.protocol`).

Frames decode on the frames module's shared pool a bounded window ahead (a one-frame clip, as in an
image set, is read by the task itself); each (prediction, GT) frame pair then goes to a small thread
pool of this module that splits the planes and computes what each metric keeps (Pillow's decoders,
OpenCV's calcHist and numpy's large operations release the GIL). A frame is dropped
when its task ends, so a clip keeps only its (N, 3, 256) histograms and per-frame floats: memory is
flat in the number of clips and in the clip length, bounded in the frame size.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from vcbench.errors import InputError
from vcbench.frames import Clip, decode_threads, decoder_description, read_image
from vcbench.metrics.cdc_math import cdc_value, pair_divergences, plane_histograms
from vcbench.metrics.colorfulness_math import plane_colorfulness
from vcbench.metrics.pairing import ClipPair, check_labels, pair_clips
from vcbench.metrics.protocol import protocol_record, scorer_fields
from vcbench.metrics.registry import get_info, metric_names
from vcbench.metrics.result import ScoreResult, _finite, clip_tables, gt_clip_table, mean_of_clips, mean_or_none

__all__ = ["LIGHT_METRICS", "LightMetric", "light_request", "score_dirs"]

#: Frame pairs in flight on the work pool per thread (decoded frames wait here, so memory stays bounded).
_AHEAD_PER_THREAD = 2


@dataclass(frozen=True)
class LightMetric:
    """A metric's torch-free implementation: `frame` maps one frame's uint8 (H, W) R, G, B planes to
    what the clip keeps of it; `clip` maps the kept values, in frame order, to (the per-frame list,
    the clip's value), exactly as the metric's torch class reports them."""

    frame: Callable[[Sequence[np.ndarray]], Any]
    clip: Callable[[list[Any]], tuple[list[float], float | None]]


def _cdc_clip(hists: list[np.ndarray]) -> tuple[list[float], float | None]:
    stacked = np.stack(hists)  # (N, 3, 256): what `CDC` concatenates from its batches
    return pair_divergences(stacked), cdc_value(stacked)


def _frame_values(values: list[float]) -> tuple[list[float], float | None]:
    return list(values), mean_or_none(values)  # a FrameMetric's clip value: the mean of its frames'


#: Metrics with a torch-free implementation (none of them loads weights or needs flow).
LIGHT_METRICS: dict[str, LightMetric] = {
    "cdc": LightMetric(plane_histograms, _cdc_clip),
    "colorfulness": LightMetric(lambda planes: plane_colorfulness(*planes), _frame_values),
}


def light_request(metrics: Sequence[str] | None, *, device: str, resize: bool, flow: str,
                  batch_size: int | None = None) -> list[str] | None:
    """The metric names (in order, each once) when this module scores the request with the streaming
    scorer's numbers and output, else None (the `Scorer` runs, and reports any mistake in the request).

    Every metric in `LIGHT_METRICS`, `device` exactly "cpu" (anything else is resolved by torch),
    no resize, a `flow` that only names the protocol ("auto" is resolved from ptlflow and its weights,
    so it goes to the Scorer) and a valid batch size.
    """
    if not metrics or device != "cpu" or resize or flow == "auto" or (batch_size is not None and batch_size < 1):
        return None
    names = list(dict.fromkeys(metrics))
    return names if all(n in LIGHT_METRICS for n in names) else None


class _Record:
    """One metric's per-clip values and per-frame lists (a `Metric`'s `per_clip` / `per_frame`)."""

    def __init__(self, impl: LightMetric) -> None:
        self.impl = impl
        self.per_clip: dict[str, float | None] = {}
        self.per_frame: dict[str, list[float]] = {}

    def end_clip(self, clip: str, kept: list[Any]) -> None:
        self.per_frame[clip], self.per_clip[clip] = self.impl.clip(kept)


def score_dirs(pred_dir: str | Path, gt_dir: str | Path, metrics: Sequence[str], *, flow: str = "dis",
               batch_size: int | None = None, use_cache: bool = True, labels: Mapping[str, int] | None = None,
               images: bool = False, progress: bool = True) -> ScoreResult:
    """`Scorer(metrics, device="cpu", flow=flow, ...).score_dirs(pred_dir, gt_dir, labels=, images=)`
    for metrics `light_request` accepted, without torch: the same checks, messages and result.

    `batch_size` and `use_cache` change no value here (each frame is scored alone and no metric has a
    GT side); they are recorded in the protocol as the streaming scorer records them.
    """
    names = list(dict.fromkeys(metrics))
    unknown = [n for n in names if n not in LIGHT_METRICS]
    if unknown:
        raise ValueError(f"no torch-free implementation of {', '.join(unknown)} (ask light_request first)")
    pairs = pair_clips(pred_dir, gt_dir, images=images)
    if labels is not None:
        check_labels(labels, [p.name for p in pairs])
    twins = [n for n in metric_names() if n in names and get_info(n).gt_twin]  # registry order, as the suite's
    decode_gt = bool(twins) or any(get_info(n).reads_gt for n in names)
    records = {n: _Record(LIGHT_METRICS[n]) for n in names}
    gt_records = {n: _Record(LIGHT_METRICS[n]) for n in twins}
    clip_frames: dict[str, int] = {}
    threads = decode_threads()
    bar = tqdm(total=sum(p.n_frames for p in pairs), unit="frame", desc="scoring", disable=not progress,
               dynamic_ncols=True)
    window = threads * _AHEAD_PER_THREAD
    work = _work_fn([records[n].impl.frame for n in names], [gt_records[n].impl.frame for n in twins])
    tasks = ((i, item) for i, pair in enumerate(pairs) for item in _frame_pairs(pair, decode_gt))
    current = -1
    kept: dict[str, list[Any]] = {}
    kept_gt: dict[str, list[Any]] = {}

    def end_clip() -> None:
        pair = pairs[current]
        for n in names:
            records[n].end_clip(pair.name, kept[n])
        for n in twins:
            gt_records[n].end_clip(pair.name, kept_gt[n])
        clip_frames[pair.name] = pair.n_frames

    try:
        with ThreadPoolExecutor(threads, thread_name_prefix="vcbench-light") as pool:
            # One stream of frame pairs over all clips, so a run of one-frame clips (an image set) keeps
            # the pool busy too; results come back in order, a clip ends where the next one's begin.
            for i, (pred_out, gt_out) in _in_order(pool, work, tasks, window):
                if i != current:
                    if current >= 0:
                        end_clip()
                    current, kept, kept_gt = i, {n: [] for n in names}, {n: [] for n in twins}
                for n, v in zip(names, pred_out):
                    kept[n].append(v)
                for n, v in zip(twins, gt_out):
                    kept_gt[n].append(v)
                bar.update(1)
            if current >= 0:
                end_clip()
    finally:
        bar.close()
    protocol = protocol_record(flow=None, flow_name=flow, decoder=decoder_description(), resize=False, device="cpu",
                               weights={}, unverified=(), pooled={}, notes=(),
                               extra=scorer_fields(batch_size, use_cache, labels))
    return _result(names, records, gt_records, clip_frames, protocol)


def _work_fn(pred_fns: list[Callable], gt_fns: list[Callable]) -> Callable[[tuple[int, tuple]], tuple[int, tuple]]:
    """The task of one frame pair (clip index, (prediction, GT)): read a frame given as its file
    (`_clip_frames`), split each frame's planes once, run every metric's frame function."""

    def work(task: tuple[int, tuple[np.ndarray | Path, np.ndarray | Path | None]]) -> tuple[int, tuple]:
        i, (pred, gt) = task
        planes = cv2.split(read_image(pred) if isinstance(pred, Path) else pred)
        gt_planes: Sequence[np.ndarray] = ()
        if gt_fns:
            gt_planes = cv2.split(read_image(gt) if isinstance(gt, Path) else gt)
        return i, ([f(planes) for f in pred_fns], [f(gt_planes) for f in gt_fns])

    return work


def _clip_frames(clip: Clip, n: int) -> Iterator[np.ndarray | Path]:
    """A clip's frames for the work pool: decoded by `Clip.iter_frames` (the frames module's pool, a
    window ahead), except a one-frame folder or image, whose file is given to the task to read with
    `read_image` (what `iter_frames` does for one frame, inline): an image set then decodes in parallel."""
    if clip.kind == "frames" and n == 1:
        return iter(clip.frame_paths())
    return clip.iter_frames()


def _frame_pairs(pair: ClipPair, decode_gt: bool) -> Iterator[tuple[np.ndarray | Path, np.ndarray | Path | None]]:
    """(predicted frame, GT frame or None) of one clip in order; the GT is decoded only when a metric
    reads it. A decode that yields another count than `pair_clips` found is refused with the
    streaming scorer's messages (a video whose header count is wrong)."""
    n = pair.n_frames
    gts = _clip_frames(pair.gt, n) if decode_gt else None
    t = 0
    for pred in _clip_frames(pair.pred, n):
        gt = next(gts, None) if gts is not None else None
        if t >= n or (gts is not None and gt is None):
            raise InputError(f"clip {pair.name}: the prediction has more frames than the {n} GT frames",
                             path=pair.gt.path, hint="predict exactly one frame per GT frame")
        yield pred, gt
        t += 1
    if t != n or (gts is not None and next(gts, None) is not None):
        raise InputError(f"clip {pair.name}: the prediction has {t} frames but the GT has {n}", path=pair.gt.path,
                         hint="predict exactly one frame per GT frame")


def _in_order(pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: Iterator[Any], window: int) -> Iterator[Any]:
    """`map(fn, items)` on `pool`, in order, at most `window` tasks ahead (their frames are what is held).

    Errors come in the order a serial loop meets them: when `items` itself fails (a frame that does not
    decode), the tasks submitted before it are collected first, and an earlier task's error wins.
    """
    pending: deque[Future] = deque()
    it = iter(items)
    try:
        while True:
            try:
                item = next(it)
            except StopIteration:
                break
            except BaseException:
                while pending:
                    yield pending.popleft().result()
                raise
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()


def _result(names: list[str], records: dict[str, _Record], gt_records: dict[str, _Record],
            clip_frames: dict[str, int], protocol: dict[str, Any]) -> ScoreResult:
    """The `ScoreResult` `MetricSuite.result` builds from the same values, in the same key order."""
    per_clip, per_frame = clip_tables(records, clip_frames)
    return ScoreResult(
        metrics={n: _finite(mean_of_clips(records[n].per_clip)) for n in names},
        unavailable={},
        gt_metrics={n: _finite(mean_of_clips(rec.per_clip)) for n, rec in gt_records.items()},
        gt_per_clip=gt_clip_table(gt_records),
        per_clip=per_clip,
        per_frame=per_frame,
        protocol=protocol,
        n_clips=len(clip_frames),
        n_frames=sum(clip_frames.values()),
    )
