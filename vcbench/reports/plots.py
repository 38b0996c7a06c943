"""Figures for the leaderboard: per-metric bars, quality versus speed, per-frame curves, frame strips.

People would rather look than read: a bar chart with interval whiskers shows at a glance whether two
models differ; a per-frame flicker curve shows *where* a model flickers; a strip of the same frames
from GT and every model shows what the numbers mean.

Matplotlib's object API (`Figure` with the Agg canvas) is used rather than pyplot, so nothing global
is touched and plotting works headless. File names are derived from the table and metric/clip names
only (same inputs, same names; a name that had to be changed for the file system carries a short hash
of itself, so 'a b' and 'a-b' never share a file), and every PNG is written through a temporary name and renamed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vcbench.atomic import atomic_path
from vcbench.errors import VcbenchError
from vcbench.frames import Clip, list_clips, read_image
from vcbench.metrics.registry import METRICS
from vcbench.reports.db import ResultsDB, RunRecord
from vcbench.reports.leaderboard import N_RESAMPLES, Table, build_tables, header, latest_runs, name_slug, slug

log = logging.getLogger(__name__)

#: Quality metrics for the quality-versus-speed scatter, in order of preference.
SPEED_METRICS = ("psnr", "lpips")
STRIP_COLUMNS = 4
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf")


@dataclass(frozen=True)
class PlotFile:
    """One written figure: its kind (bar, speed, curves, strip), its table's slug, and where."""

    kind: str
    table: str
    path: Path
    caption: str


def table_slug(t: Table) -> str:
    """The table's unique file-name id (set by `build_tables`)."""
    return t.slug or slug(f"{t.dataset}_{t.protocol}")


def _new_figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="tight")


def save_figure(fig: Any, path: Path) -> Path:
    """Atomic PNG write; metadata without the software version, so reruns give identical files."""
    with atomic_path(path, suffix=".png.part") as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path


def _row_label(label: str, unverified: bool) -> str:
    return label + (" †" if unverified else "")


# -------------------------------------------------------------------------------------- bars
def bar_chart(table: Table, metric: str, out_dir: Path) -> PlotFile | None:
    """One bar per model with its 95% interval; the best bar is darker; GT value as a dashed line."""
    rows = [r for r in table.rows if r.cells[metric].value is not None]
    if not rows:
        return None
    fig = _new_figure(max(3.2, 0.9 * len(rows) + 1.6), 3.4)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    vals = np.array([r.cells[metric].value for r in rows], dtype=float)
    lo = np.array([r.cells[metric].lo if r.cells[metric].lo is not None else np.nan for r in rows])
    hi = np.array([r.cells[metric].hi if r.cells[metric].hi is not None else np.nan for r in rows])
    err = np.vstack([np.where(np.isnan(lo), 0, vals - lo), np.where(np.isnan(hi), 0, hi - vals)])
    colours = ["#1f4e79" if r.cells[metric].best else "#8fb3d9" for r in rows]
    ax.bar(x, vals, color=colours, yerr=err, capsize=4, ecolor="#333333")
    ax.set_xticks(x, [_row_label(r.label, r.unverified) for r in rows], rotation=20 if len(rows) > 4 else 0)
    gt = table.gt.get(metric)
    if gt is not None:
        ax.axhline(gt, color="#c0392b", linestyle="--", linewidth=1.2, label=f"GT {gt:.3g}")
        ax.legend(loc="best", fontsize=8)
    frames = {r.cells[metric].frames for r in rows if r.cells[metric].frames is not None}
    ylabel = header(metric) + (f" ({min(frames)} frames, pooled)" if frames else " (95% CI over clips)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{table.dataset} · {table.protocol}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    path = out_dir / f"bar_{table_slug(table)}_{name_slug(metric)}.png"
    save_figure(fig, path)
    return PlotFile("bar", table_slug(table), path, f"{metric} per model on {table.dataset} ({table.protocol}); "
                                               "whiskers: 95% bootstrap interval over clips")


# ------------------------------------------------------------------------------------- speed
def speed_scatter(table: Table, metric: str, out_dir: Path) -> PlotFile | None:
    """Quality (with its interval) against frames per second on a log axis, one point per model."""
    rows = [r for r in table.rows if r.cells.get(metric) is not None and r.cells[metric].value is not None
            and r.fps is not None and r.fps > 0]
    if not rows:
        return None
    fig = _new_figure(4.8, 3.6)
    ax = fig.add_subplot()
    for i, r in enumerate(rows):
        c = r.cells[metric]
        yerr = None
        if c.lo is not None and c.hi is not None:
            yerr = [[c.value - c.lo], [c.hi - c.value]]
        ax.errorbar([r.fps], [c.value], yerr=yerr, fmt="o", color=_PALETTE[i % len(_PALETTE)], capsize=3,
                    label=_row_label(r.label, r.unverified))
        ax.annotate(r.label, (r.fps, c.value), textcoords="offset points", xytext=(5, 4), fontsize=8)
    fps = [r.fps for r in rows]
    log_x = max(fps) / min(fps) > 20  # speeds of baselines and networks differ by orders of magnitude
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(f"frames per second ({'log; ' if log_x else ''}device: {', '.join(sorted({r.device for r in rows}))})")
    ax.set_ylabel(header(metric))
    ax.set_title(f"{metric} vs speed · {table.dataset} · {table.protocol}", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    path = out_dir / f"speed_{table_slug(table)}_{name_slug(metric)}.png"
    save_figure(fig, path)
    return PlotFile("speed", table_slug(table), path, f"{metric} versus frames per second on {table.dataset}")


# ------------------------------------------------------------------------------------ curves
def curve_metrics() -> list[str]:
    """The metrics drawn as curves over time: those with one value per consecutive frame pair
    (`MetricInfo.per_pair`: flicker, warp_error), panels in name order."""
    return sorted(name for name, info in METRICS.items() if info.per_pair)


def clip_curves(table: Table, runs: Sequence[RunRecord], clip: str, out_dir: Path,
                metrics: Sequence[str] | None = None) -> PlotFile | None:
    """Per-frame temporal metrics over time for one clip (default: `curve_metrics()`): one axes per
    metric, one line per model."""
    if metrics is None:
        metrics = curve_metrics()
    present = [m for m in metrics if any(m in r.per_frame.get(clip, {}) for r in runs)]
    if not present:
        return None
    fig = _new_figure(6.4, 2.4 * len(present) + 0.4)
    axes = fig.subplots(len(present), 1, squeeze=False)[:, 0]
    for ax, m in zip(axes, present):
        for i, r in enumerate(runs):
            series = r.per_frame.get(clip, {}).get(m)
            if not series:
                continue
            y = np.array([np.nan if v is None else v for v in series], dtype=float)
            ax.plot(np.arange(1, len(y) + 1), y, color=_PALETTE[i % len(_PALETTE)], linewidth=1.3,
                    label=_row_label(r.model, r.unverified_weights))
        gt = (runs[0].gt_per_clip.get(clip, {}) if runs else {}).get(m)
        if gt is not None:
            ax.axhline(gt, color="#555555", linestyle=":", linewidth=1, label=f"GT clip mean {gt:.3g}")
        ax.set_ylabel(header(m))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("frame pair (t-1, t)")
    axes[0].set_title(f"{clip} · {table.dataset} · {table.protocol}", fontsize=9)
    path = out_dir / f"curves_{table_slug(table)}_{name_slug(clip)}.png"
    save_figure(fig, path)
    return PlotFile("curves", table_slug(table), path, f"per-frame {', '.join(present)} over time on clip {clip}")


# ------------------------------------------------------------------------------------- strips
def strip_indices(n: int, k: int = STRIP_COLUMNS) -> list[int]:
    """k frame indices spread over the clip, skipping frame 0 (the reference in first-frame mode)."""
    if n <= 1:
        return [0] if n == 1 else []
    idx = np.linspace(0, n - 1, min(k, n - 1) + 1)[1:]
    return sorted({int(round(i)) for i in idx})


def _frames_at(clip: Any, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """The frames at `indices` of a vcbench `Clip`, decoded in one pass (videos cannot seek cheaply)."""
    want = set(indices)
    out: dict[int, np.ndarray] = {}
    if clip.kind == "frames":
        paths = clip.frame_paths()
        return {i: read_image(paths[i]) for i in sorted(want) if i < len(paths)}
    for i, frame in enumerate(clip.iter_frames()):
        if i in want:
            out[i] = frame
        if i >= max(want):
            break
    return out


def _thumb(img: np.ndarray, width: int = 320) -> np.ndarray:
    """Shrink for display with area averaging (OpenCV), so the PNG stays small and nothing aliases."""
    import cv2

    h, w = img.shape[:2]
    if w <= width:
        return img
    return cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class FrameSources:
    """Where saved frames are: roots laid out `<root>/<model>/<clip>/` (what `vcbench evaluate
    --save-frames DIR` writes, for any number of models), and explicit per-model folders laid out
    `<dir>/<clip>/` (`MODEL=DIR/<model>`)."""

    roots: tuple[Path, ...] = ()
    models: tuple[tuple[str, Path], ...] = ()

    @classmethod
    def parse(cls, specs: Iterable[str | Path] | str | Path | None) -> "FrameSources":
        """`DIR` (a root with one folder per model) or `MODEL=DIR` (one model's clips)."""
        if specs is None:
            return cls()
        if isinstance(specs, (str, Path)):
            specs = [specs]
        roots: list[Path] = []
        models: list[tuple[str, Path]] = []
        for spec in specs:
            text = str(spec)
            name, sep, folder = text.partition("=")
            if sep and name and not Path(text).exists():
                models.append((name, Path(folder)))
            else:
                roots.append(Path(text))
        return cls(tuple(roots), tuple(models))

    def clip_dirs(self, model: str, clip: str) -> list[Path]:
        """Candidate folders holding `model`'s frames of `clip`, explicit mapping first."""
        out = [d / clip for m, d in self.models if m == model]
        out += [r / model / clip for r in self.roots]
        return [d for d in out if d.is_dir()]

    def __bool__(self) -> bool:
        return bool(self.roots or self.models)


def frame_strip(table: Table, clip: str, frames: FrameSources | Path | str, gt_clips: Mapping[str, Any],
                out_dir: Path, models: Sequence[tuple[str, str]] | None = None) -> PlotFile | None:
    """Rows: GT (when found) then each model that saved frames of `clip`; columns: the same frames.

    `frames` says where `vcbench evaluate --save-frames` wrote each model's frames (see
    `FrameSources`); `gt_clips` maps clip names to GT `Clip`s. Models are (label, model name) pairs,
    defaulting to the table's rows.
    """
    sources = frames if isinstance(frames, FrameSources) else FrameSources.parse(frames)
    models = models or [(r.label, r.model) for r in table.rows]
    rows: list[tuple[str, dict[int, np.ndarray]]] = []
    pred: list[tuple[str, Any]] = []
    for label, name in models:
        for folder in sources.clip_dirs(name, clip):
            try:
                c = Clip(clip, folder, "frames")
                if c.num_frames() == 0:
                    continue
            except VcbenchError as exc:
                log.warning("frame strip: skipping %s: %s", folder, exc)
                continue
            pred.append((label, c))
            break
    if not pred:
        return None
    n_frames = min(c.num_frames() for _, c in pred)
    gt = gt_clips.get(clip)
    if gt is not None:
        n_frames = min(n_frames, gt.num_frames())
    idx = strip_indices(n_frames)
    if not idx:
        return None
    if gt is not None:
        rows.append(("GT", _frames_at(gt, idx)))
    for label, c in pred:
        rows.append((label, _frames_at(c, idx)))
    size = next(iter(rows[-1][1].values())).shape[:2]
    aspect = size[0] / size[1]
    fig = _new_figure(2.6 * len(idx) + 0.8, 2.6 * aspect * len(rows) + 0.6)
    axes = fig.subplots(len(rows), len(idx), squeeze=False)
    for r, (label, frames) in enumerate(rows):
        for c, i in enumerate(idx):
            ax = axes[r, c]
            img = frames.get(i)
            if img is not None:
                if img.shape[:2] != size:  # GT at another resolution than the saved frames: display only
                    import cv2

                    img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
                ax.imshow(_thumb(img), interpolation="antialiased")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {i}", fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.suptitle(f"{clip} · {table.dataset}", fontsize=9)
    path = out_dir / f"strip_{table_slug(table)}_{name_slug(clip)}.png"
    save_figure(fig, path)
    return PlotFile("strip", table_slug(table), path, f"clip {clip}: " + ("GT, then " if gt is not None else "")
                    + "each model, frames " + ", ".join(map(str, idx)))


# ---------------------------------------------------------------------------------------- all
def _clip_order(runs: Iterable[RunRecord]) -> list[str]:
    seen: dict[str, None] = {}
    for r in runs:
        for c in r.per_frame or r.per_clip:
            seen.setdefault(c, None)
    return list(seen)


def make_plots(db: ResultsDB, out_dir: str | Path, *, dataset: str | None = None, protocol: str | None = None,
               frames: FrameSources | Iterable[str | Path] | str | Path | None = None, gt_root: str | Path | None = None,
               gt_clips: Mapping[str, Any] | None = None, n_resamples: int = N_RESAMPLES,
               tables: Sequence[Table] | None = None) -> list[PlotFile]:
    """Every figure for the selected runs; returns what was written, in a stable order.

    Frame strips need `frames` (see `FrameSources`: roots `<root>/<model>/<clip>/` or `MODEL=DIR`); GT frames come from `gt_root`
    (a folder of clips) or the `gt_clips` mapping; without either the strip shows the models only.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    all_runs = db.runs(dataset=dataset, protocol=protocol)
    if tables is None:
        tables = build_tables(all_runs, n_resamples=n_resamples)
    latest_ids = {r.id for r in latest_runs(all_runs)}
    sources = frames if isinstance(frames, FrameSources) else FrameSources.parse(frames)
    gt_map: dict[str, Any] = dict(gt_clips or {})
    if gt_root is not None:
        gt_map.update({c.name: c for c in list_clips(gt_root)})
    written: list[PlotFile] = []
    for t in tables:
        for m in t.metrics:
            pf = bar_chart(t, m, out)
            if pf:
                written.append(pf)
        for m in SPEED_METRICS:
            if m in t.metrics:
                pf = speed_scatter(t, m, out)
                if pf:
                    written.append(pf)
        ids = [r.run_id for r in t.rows if r.run_id in latest_ids]
        full = [run for run in (db.get(i, with_frames=True) for i in ids) if run is not None]
        # keep the table's row order (best first) for line colours and legends
        for clip in _clip_order(full):
            pf = clip_curves(t, full, clip, out)
            if pf:
                written.append(pf)
        if sources:
            for clip in _clip_order(full):
                pf = frame_strip(t, clip, sources, gt_map, out)
                if pf:
                    written.append(pf)
    return written


def png_variance(path: str | Path) -> float:
    """Pixel variance of a PNG (tests and the report use it to tell a real figure from a blank one)."""
    img = read_image(path).astype(np.float64)
    v = float(img.var())
    return v if math.isfinite(v) else 0.0
