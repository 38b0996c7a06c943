"""Which predicted clip scores against which GT clip, and the labels they carry: checks before any decode.

Torch-free, so both scoring paths run the same checks with the same messages: the streaming scorer
(`metrics.scorer.Scorer`, which re-exports these names) and the torch-free one (`metrics.light`). A
mistake in the inputs (a missing or extra clip, a frame count or size that differs, a bad label) is
found from the folder listings and the image headers, in seconds, before any metric is built.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vcbench.errors import InputError
from vcbench.frames import Clip, list_clips

__all__ = ["ClipPair", "check_labels", "labels_record", "pair_clips"]


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
    text = "".join(f"{k}\t{int(labels[k])}\n" for k in sorted(labels))
    return {"n": len(labels), "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "meaning": "top1/top5 are accuracies against these ImageNet-1k class indices"}
