"""Uncertainty for the leaderboard: bootstrap confidence intervals over clips and paired tests.

Benchmark sets are small (DAVIS-30 has 30 clips), so a 0.1 dB gap in PSNR is often noise. Every
dataset value gets a 95% percentile-bootstrap interval over clips (the clip is the sampling unit:
frames within a clip are strongly correlated), and `vcbench compare` tests two models on the clips
they share: a paired bootstrap of the mean difference plus the Wilcoxon signed-rank test.

The resampling is vectorised numpy with a fixed seed, so the same values always give the same
interval. Metrics that pool frames (FID, KID) have no per-clip values and get no interval. How a
metric ranks and whether it pools come from the metric registry (`MetricInfo`), never from a copy here.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vcbench.errors import VcbenchError
from vcbench.metrics.registry import METRICS, Direction

N_RESAMPLES = 10_000
LEVEL = 0.95
SEED = 0
#: Upper bound on resample x clip indices held at once (keeps memory flat for 10k-image sets).
_CHUNK_ELEMENTS = 4_000_000

def ranking(metric: str) -> Direction | None:
    """How `metric` ranks (its registry entry's `Direction`); None for a name the registry does not
    know (a run recorded with a plug-in metric that is not installed here): such a metric is shown but
    never ranked."""
    info = METRICS.get(metric)
    return None if info is None else info.direction


def direction(metric: str) -> str | None:
    """'higher', 'lower' or 'closer' (to the GT's value), as the JSON outputs spell it; None when unknown."""
    d = ranking(metric)
    return None if d is None else d.word


def is_pooled(metric: str) -> bool:
    """Whether the dataset value pools all frames (FID, KID) instead of averaging clips."""
    info = METRICS.get(metric)
    return info is not None and info.pooled


def json_ready(obj: Any) -> Any:
    """`obj` with every non-finite float (inf, -inf, NaN) replaced by None, recursively through dicts,
    lists and tuples: JSON has no infinity, and `json.dumps(allow_nan=False)` refuses it. Callers keep
    the reason beside the value (a `note`), so a null is never unexplained."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj


def _finite_array(values: Iterable[Any]) -> np.ndarray:
    arr = np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]


@dataclass(frozen=True)
class ConfidenceInterval:
    """Mean over clips with its percentile-bootstrap interval (`lo`, `hi` None when n < 2)."""

    mean: float | None
    lo: float | None
    hi: float | None
    n: int
    level: float = LEVEL

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Means of `n_resamples` resamples with replacement, in chunks so memory stays bounded."""
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // n)
    out = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        k = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, size=(k, n))
        out[start:start + k] = values[idx].mean(axis=1)
    return out


def bootstrap_ci(values: Iterable[float | None], *, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                 seed: int = SEED) -> ConfidenceInterval:
    """Percentile-bootstrap interval of the mean of `values` (None/NaN dropped, as undefined clips)."""
    arr = _finite_array(values)
    n = int(arr.shape[0])
    if n == 0:
        return ConfidenceInterval(None, None, None, 0, level)
    mean = float(arr.mean())
    if n == 1:
        return ConfidenceInterval(mean, None, None, 1, level)
    means = _bootstrap_means(arr, n_resamples, seed)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return ConfidenceInterval(mean, float(lo), float(hi), n, level)


# ------------------------------------------------------------------------------ per-clip values
def closeness(pred: float | None, gt: float | None) -> float | None:
    """|log(pred / GT)|: 0 when the prediction is exactly as colourful as the GT; infinite for a colourless
    prediction of a colourful GT (the gray floor); None where undefined (GT colourless, negative values)."""
    if pred is None or gt is None or not gt > 0 or pred < 0:
        return None
    if pred == 0:
        return math.inf
    return abs(math.log(pred / gt))


def clip_values(run: Any, metric: str) -> dict[str, float]:
    """{clip: value} of `metric` for a `RunRecord`, finite values only, in the run's clip order."""
    out: dict[str, float] = {}
    for clip, vals in run.per_clip.items():
        v = vals.get(metric)
        if v is not None and math.isfinite(float(v)):
            out[clip] = float(v)
    return out


def ranking_values(run: Any, metric: str) -> dict[str, float]:
    """{clip: the value that ranks}: the metric itself, or for colourfulness |log(pred/GT)| per clip.

    The GT's per-clip colourfulness comes from `run.gt_per_clip`; clips without it are left out.
    """
    if ranking(metric) is not Direction.CLOSER:
        return clip_values(run, metric)
    out: dict[str, float] = {}
    gt_per_clip = run.gt_per_clip or {}
    for clip, vals in run.per_clip.items():
        c = closeness(vals.get(metric), gt_per_clip.get(clip, {}).get(metric))
        if c is not None:
            out[clip] = c
    return out


def metric_ci(run: Any, metric: str, **kw: Any) -> ConfidenceInterval | None:
    """Bootstrap interval over clips for a run's dataset value; None for pooled metrics (FID, KID)."""
    if is_pooled(metric):
        return None
    vals = clip_values(run, metric)
    if not vals:
        return None
    return bootstrap_ci(list(vals.values()), **kw)


def dataset_closeness(run: Any, metric: str) -> float | None:
    """|log(dataset value / GT dataset value)|, the leaderboard's rank key for colourfulness."""
    return closeness(run.metrics.get(metric), (run.gt_metrics or {}).get(metric))


# --------------------------------------------------------------------------------- paired tests
@dataclass(frozen=True)
class PairedResult:
    """One metric of `vcbench compare A B` over the clips both runs scored.

    `quantity` says what was compared (the metric, or colourfulness's |log(pred/GT)|); `diff` is
    mean(A - B) of that quantity with its paired-bootstrap interval; `better` is "A", "B" or "tie" by
    the metric's direction; `significant` is True when the interval excludes 0.
    """

    metric: str
    quantity: str
    direction: str | None
    n: int
    mean_a: float | None
    mean_b: float | None
    diff: float | None
    lo: float | None
    hi: float | None
    p_value: float | None
    better: str | None
    significant: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: infinities (colourless predictions) become null; the note says why."""
        return json_ready(asdict(self))


def wilcoxon_p(diffs: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value (scipy); 1.0 when every difference is zero."""
    from scipy.stats import wilcoxon

    if not np.any(diffs != 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about ties/zeros and switches to the normal approx.
        p = float(wilcoxon(diffs).pvalue)
    return p if math.isfinite(p) else 1.0


def paired_test(a: Mapping[str, float], b: Mapping[str, float], *, metric: str, quantity: str | None = None,
                n_resamples: int = N_RESAMPLES, level: float = LEVEL, seed: int = SEED) -> PairedResult:
    """Paired comparison of per-clip values `a` and `b` ({clip: value}) on their shared clips.

    Raises `VcbenchError` when fewer than 2 clips are shared: no test is meaningful then.
    """
    common = [c for c in a if c in b]
    if len(common) < 2:
        raise VcbenchError(f"{metric}: the two runs share {len(common)} scored clip(s); a paired test needs at least 2",
                           hint="evaluate both models on the same benchmark set")
    xa = np.asarray([a[c] for c in common], dtype=np.float64)
    xb = np.asarray([b[c] for c in common], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        d = xa - xb
    note = ""
    if np.all(np.isfinite(d)):
        ci = bootstrap_ci(d, n_resamples=n_resamples, level=level, seed=seed)
        lo, hi, diff = ci.lo, ci.hi, float(d.mean())
        ranked = d
    else:
        # Infinite per-clip values (|log| of a colourless prediction): the mean and its interval are
        # undefined, but the signed-rank test only needs ranks, so an infinity ranks above every finite
        # difference. inf - inf (both colourless) is a tie.
        d = np.where(np.isnan(d), 0.0, d)
        finite_max = float(np.max(np.abs(d[np.isfinite(d)]), initial=1.0))
        ranked = np.where(np.isinf(d), np.sign(d) * (finite_max * 10.0 + 1.0), d)
        pos, neg = bool(np.any(d == np.inf)), bool(np.any(d == -np.inf))
        lo = hi = None
        if pos or neg:
            diff = math.nan if (pos and neg) else (math.inf if pos else -math.inf)
            note = "infinite on some clips (colourless prediction): no mean difference or interval"
        else:  # only ties between two infinities: compare the remaining clips as usual
            ci = bootstrap_ci(d, n_resamples=n_resamples, level=level, seed=seed)
            lo, hi, diff = ci.lo, ci.hi, float(d.mean())
    dirn = ranking(metric)
    better: str | None
    if dirn is None or math.isnan(diff):
        better = None
    elif diff == 0:
        better = "tie"
    else:
        a_up = diff > 0
        better = ("A" if a_up else "B") if dirn is Direction.HIGHER else ("B" if a_up else "A")
    p = wilcoxon_p(ranked)
    alpha = 1.0 - level
    # Both must agree: with very few clips the bootstrap interval is too narrow, while the signed-rank
    # test honestly cannot reach p < 0.05 below 6 clips.
    ci_excludes_0 = lo is not None and hi is not None and (lo > 0 or hi < 0)
    significant = p < alpha and (ci_excludes_0 or (lo is None and better in ("A", "B")))
    if len(common) < 6 and not note:
        note = f"only {len(common)} clips: the signed-rank test cannot reach p < {alpha:g}"

    def mean(x: np.ndarray) -> float | None:
        m = float(x.mean())
        return m if math.isfinite(m) else None

    return PairedResult(metric=metric, quantity=quantity or metric, direction=direction(metric), n=len(common),
                        mean_a=mean(xa), mean_b=mean(xb), diff=None if math.isnan(diff) else diff, lo=lo, hi=hi,
                        p_value=p, better=better, significant=bool(significant), note=note)


def check_comparable(run_a: Any, run_b: Any) -> None:
    """Refuse comparisons across datasets, protocols (flow estimators) or reference modes."""
    for attr, what in (("dataset", "benchmark set"), ("protocol", "protocol (flow estimator)"),
                       ("reference_mode", "reference mode")):
        va, vb = getattr(run_a, attr), getattr(run_b, attr)
        if va != vb:
            raise VcbenchError(f"run {run_a.id} ({run_a.model}) and run {run_b.id} ({run_b.model}) differ in "
                               f"{what}: {va!r} vs {vb!r}; their numbers are not comparable",
                               hint="compare runs evaluated under the same protocol (see vcbench leaderboard)")


def compare_runs(run_a: Any, run_b: Any, metrics: Sequence[str] | None = None, **kw: Any) -> list[PairedResult]:
    """Paired tests per metric between two `RunRecord`s of the same dataset and protocol.

    Pooled metrics (FID, KID) and metrics one run lacks come back with a note instead of a test.
    """
    check_comparable(run_a, run_b)
    if metrics is None:
        metrics = [m for m in run_a.metrics if m in run_b.metrics]
    shared_clips = [c for c in run_a.per_clip if c in run_b.per_clip]
    if len(shared_clips) < 2:
        raise VcbenchError(f"run {run_a.id} ({run_a.model}) and run {run_b.id} ({run_b.model}) share "
                           f"{len(shared_clips)} clip(s); a paired test needs at least 2",
                           hint="evaluate both models on the same benchmark set")
    out: list[PairedResult] = []
    for m in metrics:
        dirn = ranking(m)
        quantity = f"|log({m}/GT)|" if dirn is Direction.CLOSER else m
        if is_pooled(m):
            out.append(_untested(m, quantity, dirn, run_a, run_b,
                                 "pooled over all frames: no per-clip values to pair"))
            continue
        gone = [(who, run.unavailable[m]) for who, run in (("A", run_a), ("B", run_b)) if m in (run.unavailable or {})]
        if gone:
            why = "; ".join(f"not measured in {who}: {short_reason(reason)}" for who, reason in gone)
            out.append(_untested(m, quantity, dirn, run_a, run_b, why))
            continue
        va, vb = ranking_values(run_a, m), ranking_values(run_b, m)
        n_common = sum(1 for c in va if c in vb)
        if n_common < 2:
            gt_missing = (dirn is Direction.CLOSER and clip_values(run_a, m) and clip_values(run_b, m)
                          and not (run_a.gt_per_clip and run_b.gt_per_clip))
            why = "per-clip GT values missing" if gt_missing else f"defined on {n_common} shared clip(s)"
            out.append(_untested(m, quantity, dirn, run_a, run_b, why))
            continue
        out.append(paired_test(va, vb, metric=m, quantity=quantity, **kw))
    return out


def short_reason(reason: str, limit: int = 70) -> str:
    """The first sentence of an unavailability reason, without the path or URL detail, cut to `limit`."""
    first = reason.split(". ")[0].split(": /")[0].split(": download of")[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _untested(metric: str, quantity: str, dirn: Direction | None, run_a: Any, run_b: Any, note: str) -> PairedResult:
    def val(run: Any) -> float | None:
        v = run.metrics.get(metric)
        if dirn is Direction.CLOSER:
            return dataset_closeness(run, metric)
        return None if v is None else float(v)

    a, b = val(run_a), val(run_b)
    diff = None if a is None or b is None else a - b
    better: str | None = None
    if diff is not None and dirn is not None:
        if diff == 0:
            better = "tie"
        elif dirn is Direction.HIGHER:
            better = "A" if diff > 0 else "B"
        else:
            better = "A" if diff < 0 else "B"
    return PairedResult(metric=metric, quantity=quantity, direction=direction(metric), n=0, mean_a=a, mean_b=b,
                        diff=diff, lo=None, hi=None, p_value=None, better=better, significant=False, note=note)
