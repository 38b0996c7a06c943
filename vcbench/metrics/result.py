"""What a scoring run produced, as one torch-free record (the reports and the CLI read it).

`to_json()` is DESIGN.md's `vcbench score --json` schema, byte for byte; `gt_per_clip`, the GT's
own per-clip values of the metrics with a GT twin (colourfulness, flicker), is not part of that
schema: it travels to the results database (ranking by closeness to the GT, paired tests).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol, Sequence


def _finite(v: Any) -> float | None:
    """`v` as a float, None where it is None, NaN or infinite (JSON has neither)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def mean_or_none(values: Sequence[float]) -> float | None:
    """A clip's value from its per-frame values: their mean, None where there are none."""
    return float(sum(values) / len(values)) if values else None


def mean_of_clips(per_clip: Mapping[str, float | None]) -> float | None:
    """Dataset value from per-clip values: their mean, undefined (None/NaN) clips left out."""
    return mean_or_none([v for v in per_clip.values() if v is not None and not math.isnan(v)])


class ClipValues(Protocol):
    """What a metric (or the torch-free scorer's record of one) holds per clip: its value and frames'."""

    per_clip: dict[str, float | None]
    per_frame: dict[str, list[float]]


def clip_tables(records: Mapping[str, ClipValues], clips: Iterable[str]
                ) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, list[float | None]]]]:
    """`ScoreResult.per_clip` and `.per_frame` ({clip: {metric: ...}}) of `records` by metric name, every
    clip in `clips` present, in the order of `records` (non-finite values None, empty lists left out):
    the one conversion both scorers use."""
    per_clip: dict[str, dict[str, float | None]] = {c: {} for c in clips}
    per_frame: dict[str, dict[str, list[float | None]]] = {c: {} for c in per_clip}
    for n, rec in records.items():
        for c, v in rec.per_clip.items():
            per_clip.setdefault(c, {})[n] = _finite(v)
        for c, vs in rec.per_frame.items():
            if vs:
                per_frame.setdefault(c, {})[n] = [_finite(x) for x in vs]
    return per_clip, per_frame


def gt_clip_table(twins: Mapping[str, ClipValues]) -> dict[str, dict[str, float | None]]:
    """`ScoreResult.gt_per_clip` ({clip: {metric: value}}) of the GT twins by metric name."""
    out: dict[str, dict[str, float | None]] = {}
    for n, twin in twins.items():
        for clip, value in twin.per_clip.items():
            out.setdefault(clip, {})[n] = value
    return out


@dataclass
class ScoreResult:
    """Everything a scoring run produced; `to_json()` is DESIGN.md's `vcbench score --json` schema."""

    metrics: dict[str, float | None]
    unavailable: dict[str, str]
    gt_metrics: dict[str, float | None]
    per_clip: dict[str, dict[str, float | None]]
    per_frame: dict[str, dict[str, list[float | None]]]
    protocol: dict[str, Any]
    n_clips: int
    n_frames: int
    #: Not part of the JSON: the GT's own per-clip values {clip: {metric: value}} (GT twins).
    gt_per_clip: dict[str, dict[str, float | None]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinities become null; JSON has neither)."""
        return {
            "metrics": {k: _finite(v) for k, v in self.metrics.items()},
            "unavailable": dict(self.unavailable),
            "gt_metrics": {k: _finite(v) for k, v in self.gt_metrics.items()},
            "per_clip": {c: {k: _finite(v) for k, v in d.items()} for c, d in self.per_clip.items()},
            "per_frame": {c: {k: [_finite(x) for x in vs] for k, vs in d.items()} for c, d in self.per_frame.items()},
            "protocol": self.protocol,
            "n_clips": int(self.n_clips),
            "n_frames": int(self.n_frames),
        }

    def dumps(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_json(), indent=indent, allow_nan=False, default=str)
