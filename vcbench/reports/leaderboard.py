"""Leaderboard tables: rank recorded runs per benchmark set and protocol, in five output formats.

A table only ever holds runs that are comparable: same benchmark set (and data checksum), same
protocol (which names the flow estimator, so warp error and flicker mean the same thing), same flow
parameters and same reference mode. Runs that differ in any of these land in separate tables whose
headers name the difference. Each row is a model identity (name, configuration, weight hashes) with
its latest run; each value carries its 95% bootstrap interval over clips (`stats.metric_ci`); the
best value per column is bold; FID/KID carry their frame counts; runs with unverified weights carry
a dagger and a footnote. Column order, ranking direction, pooling and FID's frame floor are the metric
registry's facts (`MetricInfo.column`, `.direction`, `.pooled`, `.frame_floor`).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from vcbench.atomic import atomic_path
from vcbench.citations import citation
from vcbench.errors import InputError, VcbenchError
from vcbench.metrics.registry import METRICS, Direction
from vcbench.metrics.result import _finite
from vcbench.reports.db import ResultsDB, RunRecord
from vcbench.reports.stats import (N_RESAMPLES, dataset_closeness, direction, is_pooled, json_ready, metric_ci,
                                   ranking, short_reason)
from vcbench.weights import missing_short

FORMATS = ("md", "csv", "latex", "html", "json")
DAGGER_NOTE = "weights whose sha256 differs from the registry's (run with --allow-unverified-weights)"


def flow_label(flow: dict[str, Any] | None) -> str:
    """'dis {preset: medium}' from a run's flow record ({estimator|name, params})."""
    if not flow:
        return "none"
    name = flow.get("estimator") or flow.get("name") or "?"
    params = flow.get("params") or {}
    if not params:
        return str(name)
    inner = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{name} ({inner})"


@dataclass
class Cell:
    """One metric value of one row: dataset value, its interval, and whether it is the column's best."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    n: int = 0
    frames: int | None = None
    best: bool = False
    rank_key: float | None = None
    #: Why `value` or `rank_key` is not a finite number (None when both are): JSON writes null there,
    #: and every format carries this reason in the table's notes.
    note: str | None = None


@dataclass
class Row:
    model: str
    label: str
    run_id: int | None
    model_id: str
    unverified: bool
    fps: float | None
    device: str
    created: str
    n_clips: int
    n_frames: int
    cells: dict[str, Cell] = field(default_factory=dict)
    #: The model's paper (`build_tables`' `cite`; a wrapped model cites base and wrapper).
    citation: str = ""


@dataclass
class Table:
    """All comparable runs: one benchmark set under one protocol, flow setting and reference mode."""

    dataset: str
    protocol: str
    flow: dict[str, Any]
    reference_mode: str
    dataset_checksum: str
    metrics: list[str]
    rows: list[Row]
    gt: dict[str, float | None]
    notes: list[str] = field(default_factory=list)
    #: File-name-safe id, unique among the tables built together (plots and report anchors use it).
    slug: str = ""

    @property
    def title(self) -> str:
        return f"{self.dataset}: protocol {self.protocol}"

    @property
    def subtitle(self) -> str:
        parts = [f"flow {flow_label(self.flow)}", f"reference {self.reference_mode}"]
        if self.dataset_checksum:
            parts.append(f"data {self.dataset_checksum[:12]}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["title"], d["subtitle"] = self.title, self.subtitle
        d["directions"] = {m: direction(m) for m in self.metrics}
        return d


def _metric_sort_key(m: str) -> tuple[float, str]:
    """Columns by the registry's `column` rank; metrics without one (or unknown here) after, by name."""
    info = METRICS.get(m)
    column = None if info is None else info.column
    return (math.inf if column is None else column, m)


def _group_key(run: RunRecord) -> tuple[str, str, str, str, str]:
    return (run.dataset, run.protocol, json.dumps(run.flow, sort_keys=True), run.reference_mode, run.dataset_checksum)


def latest_runs(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """The latest run per (comparability group, model identity); earlier runs are superseded."""
    best: dict[tuple, RunRecord] = {}
    for r in runs:
        key = (_group_key(r), r.model_id)
        cur = best.get(key)
        if cur is None or (r.created, r.id or 0) >= (cur.created, cur.id or 0):
            best[key] = r
    return sorted(best.values(), key=lambda r: (r.created, r.id or 0))


def build_tables(runs: Iterable[RunRecord], *, dataset: str | None = None, protocol: str | None = None,
                 metrics: Sequence[str] | None = None, n_resamples: int = N_RESAMPLES,
                 cite: Callable[[str], str] = citation) -> list[Table]:
    """Group runs into comparable tables, keep the latest run per model, fill intervals and bests.
    `cite(model)` gives a row's citation: by default the built-in table; the CLI hands in one that
    also asks a plug-in's class (the reports may not load model classes themselves)."""
    chosen = [r for r in runs if (dataset is None or r.dataset == dataset) and (protocol is None or r.protocol == protocol)]
    groups: dict[tuple, list[RunRecord]] = {}
    for r in latest_runs(chosen):
        groups.setdefault(_group_key(r), []).append(r)
    ordered = sorted(groups.items(), key=lambda kv: kv[0])
    tables = [_build_table(rs, metrics, n_resamples, cite) for _, rs in ordered]
    _note_splits(tables)
    _assign_slugs(tables, [k for k, _ in ordered])
    return tables


def slug(text: str) -> str:
    """File-name-safe, deterministic: 'vcbench-v1/dis' -> 'vcbench-v1-dis' (not unique: see `name_slug`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def name_slug(text: str) -> str:
    """`slug(text)`, made unique: where the slug had to change the text (a clip 'a b' and a clip 'a-b'
    both give 'a-b'), a short hash of the original text is appended, so two names never share a file."""
    s = slug(text)
    return s if s == text else f"{s}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def _assign_slugs(tables: list[Table], keys: list[tuple]) -> None:
    """'<dataset>_<protocol>[_<reference mode>]', plus a short hash of the group where that repeats
    (same set and protocol, other flow parameters or data checksum), so figures never overwrite."""
    base = [slug("_".join([t.dataset, t.protocol] + ([t.reference_mode] if t.reference_mode != "first-frame" else [])))
            for t in tables]
    for t, b, k in zip(tables, base, keys):
        if base.count(b) > 1:
            b += "_" + hashlib.sha256(json.dumps(k).encode()).hexdigest()[:6]
        t.slug = b


def _build_table(runs: list[RunRecord], metrics: Sequence[str] | None, n_resamples: int,
                 cite: Callable[[str], str]) -> Table:
    first = runs[0]
    missing: list[str] = []
    if metrics is None:
        names = {m for r in runs for m in r.metrics}
        # a metric no run could measure (e.g. its weights were missing) gets no column, only a note
        missing = sorted((m for m in names if all(_finite(r.metrics.get(m)) is None for r in runs)), key=_metric_sort_key)
        metrics = sorted(names - set(missing), key=_metric_sort_key)
    metrics = list(metrics)
    gt: dict[str, float | None] = {}
    for r in runs:
        for k, v in (r.gt_metrics or {}).items():
            if isinstance(v, (int, float)) and gt.get(k) is None:
                gt[k] = _finite(v)
    names_count: dict[str, set[str]] = {}
    for r in runs:
        names_count.setdefault(r.model, set()).add(r.model_id)
    rows: list[Row] = []
    for r in runs:
        label = r.model if len(names_count[r.model]) == 1 else f"{r.model} [{r.model_id[:6]}]"
        row = Row(model=r.model, label=label, run_id=r.id, model_id=r.model_id, unverified=r.unverified_weights,
                  fps=_finite(r.fps), device=r.device, created=r.created, n_clips=r.n_clips, n_frames=r.n_frames,
                  citation=cite(r.model))
        for m in metrics:
            raw = r.metrics.get(m)
            value = _finite(raw)
            cell = Cell(value=value)
            if value is None and raw is not None:
                cell.note = f"{m} was recorded as {float(raw)!r}, not a finite number; shown as n/a"
            if value is not None:
                if is_pooled(m):
                    cell.frames = r.n_frames
                else:
                    ci = metric_ci(r, m, n_resamples=n_resamples)
                    if ci is not None:
                        cell.lo, cell.hi, cell.n = ci.lo, ci.hi, ci.n
                d = ranking(m)
                cell.rank_key = (dataset_closeness(r, m) if d is Direction.CLOSER
                                 else -value if d is Direction.HIGHER else value if d is Direction.LOWER else None)
                if cell.rank_key is not None and not math.isfinite(cell.rank_key):
                    cell.note = _infinite_rank_note(m, value, (r.gt_metrics or {}).get(m))
            row.cells[m] = cell
        rows.append(row)
    for m in metrics:
        keys = [k for row in rows if (k := row.cells[m].rank_key) is not None and math.isfinite(k)]
        if keys:
            top = min(keys)
            for row in rows:
                k = row.cells[m].rank_key
                row.cells[m].best = k is not None and math.isfinite(k) and math.isclose(k, top, rel_tol=1e-12,
                                                                                      abs_tol=1e-15)
    # order rows by the first ranked metric that every row has, best first (an infinite key sorts last)
    order_metric = next((m for m in metrics if all(rw.cells[m].rank_key is not None for rw in rows)), None)
    if order_metric is not None:
        rows.sort(key=lambda rw: rw.cells[order_metric].rank_key)  # type: ignore[arg-type,return-value]
    for rw in rows:  # the rank key is only for ordering: JSON cannot hold its infinity, the note says why
        for cell in rw.cells.values():
            if cell.rank_key is not None and not math.isfinite(cell.rank_key):
                cell.rank_key = None
    notes: list[str] = [f"{rw.label}: {rw.cells[m].note}" for rw in rows for m in metrics if rw.cells[m].note]
    for m in metrics:
        frames = {rw.cells[m].frames for rw in rows if rw.cells[m].frames is not None}
        info = METRICS.get(m)
        floor = None if info is None else info.frame_floor  # FID: below it the 2048-d covariance is singular
        if floor is not None and frames and min(frames) < floor:
            notes.append(f"{m.upper()} pools {min(frames)} frames (< {floor}): its covariance is rank-deficient; "
                         "prefer KID on this set")
        if ranking(m) is Direction.CLOSER:
            notes.append(f"{m} ranks by closeness to the GT's value, |log(pred/GT)|"
                         + (f"; GT = {_fmt(gt[m])}" if gt.get(m) is not None else ""))
    if missing:
        reasons = {m: next((r.unavailable[m] for r in runs if m in (r.unavailable or {})), "") for m in missing}
        for m in missing:
            raw = next((r.metrics[m] for r in runs if r.metrics.get(m) is not None), None)
            if not reasons[m] and raw is not None:
                reasons[m] = f"recorded as {float(raw)!r}, not a finite number"
        groups: dict[str, list[str]] = {}  # one entry per missing file: fid and kid share one, top1 and top5 too
        for m in missing:
            groups.setdefault(_short(reasons[m]) if reasons[m] else "", []).append(m)
        why = "; ".join(f"{', '.join(ms)}: {text}" if text else ", ".join(ms) for text, ms in groups.items())
        notes.append(f"not measured in any run here: {why}")
    return Table(dataset=first.dataset, protocol=first.protocol, flow=dict(first.flow),
                 reference_mode=first.reference_mode, dataset_checksum=first.dataset_checksum,
                 metrics=metrics, rows=rows, gt=gt, notes=notes)


def _infinite_rank_note(metric: str, value: float, gt: Any) -> str:
    """Why a closeness-to-GT rank key is infinite: a colourless prediction (value 0) of a colourful GT."""
    gt_text = f" while the GT's is {_fmt(_finite(gt))}" if isinstance(gt, (int, float)) else ""
    return (f"{metric} is {_fmt(value)} (no colour){gt_text}, so |log(pred/GT)| is infinite: ranked last, "
            "rank key null in JSON")


def _short(reason: str, limit: int = 60) -> str:
    """A reason short enough for a table note; a missing weight file in the one form every report uses."""
    weights = missing_short(reason)
    return weights if weights is not None else short_reason(reason, limit)


def _note_splits(tables: list[Table]) -> None:
    """Say so when one benchmark set appears in several tables: their numbers are not comparable."""
    by_dataset: dict[str, list[Table]] = {}
    for t in tables:
        by_dataset.setdefault(t.dataset, []).append(t)
    for ds, ts in by_dataset.items():
        if len(ts) > 1:
            for t in ts:
                t.notes.insert(0, f"runs on {ds} were made under {len(ts)} different protocol settings; each has "
                                  "its own table and their values (warp error and flicker above all) are not comparable")


# ----------------------------------------------------------------------------------- formatting
def _decimals(v: float) -> int:
    """Enough decimals for about 4 significant digits (warp error is ~1e-4; PSNR ~30)."""
    a = abs(v)
    if a >= 1 or a == 0:
        return 1 if a >= 100 else 2 if a >= 10 else 3 if a >= 1 else 4
    return min(8, max(4, 3 - math.floor(math.log10(a))))


def _fmt(v: float | None, decimals: int | None = None) -> str:
    if v is None or not math.isfinite(v):  # a stored inf/NaN is never printed as a number
        return "n/a"
    return f"{v:.{_decimals(v) if decimals is None else decimals}f}"


def _value_parts(cell: Cell) -> tuple[str, str]:
    """(value text, annotation text) with the interval or frame count; annotation may be empty."""
    if cell.value is None:
        return "n/a", ""
    dec = _decimals(cell.value)
    if cell.frames is not None:
        return _fmt(cell.value, dec), f"({cell.frames} frames)"
    if cell.lo is not None and cell.hi is not None:
        return _fmt(cell.value, dec), f"[{_fmt(cell.lo, dec)}, {_fmt(cell.hi, dec)}]"
    return _fmt(cell.value, dec), ""


def header(metric: str, latex: bool = False) -> str:
    """The column heading: the name and its direction's arrow ('psnr ↑', 'colorfulness ≈GT')."""
    d = ranking(metric)
    arrow = "" if d is None else d.latex_arrow if latex else d.arrow
    name = _latex_escape(metric) if latex else metric
    return f"{name} {arrow}".strip()


def _footnotes(table: Table) -> list[str]:
    out = list(table.notes)
    if any(r.unverified for r in table.rows):
        out.append(f"† {DAGGER_NOTE}")
    return out


def render_markdown(tables: Sequence[Table]) -> str:
    parts: list[str] = []
    for t in tables:
        cols = ["model"] + [_md_escape(header(m)) for m in t.metrics] + ["fps", "device", "run", "citation"]
        lines = [f"### {_md_escape(t.title)}", "", f"_{_md_escape(t.subtitle)}_", "", "| " + " | ".join(cols) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
        for r in t.rows:
            cells = [_md_escape(r.label) + (" †" if r.unverified else "")]
            for m in t.metrics:
                v, ann = _value_parts(r.cells[m])
                if r.cells[m].best:
                    v = f"**{v}**"
                cells.append(f"{v} {ann}".strip())
            cells += [_fmt(r.fps, 2) if r.fps is not None else "n/a", _md_escape(r.device), str(r.run_id),
                      _md_escape(r.citation)]
            lines.append("| " + " | ".join(cells) + " |")
        gt_row = _gt_cells(t)
        if gt_row:
            lines.append("| _GT (reference)_ | " + " | ".join(gt_row) + " |  |  |  |  |")
        notes = _footnotes(t)
        if notes:
            lines.append("")
            lines += [f"- {_md_escape(n)}" for n in notes]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _gt_cells(t: Table) -> list[str]:
    if not any(t.gt.get(m) is not None for m in t.metrics):
        return []
    return [_fmt(t.gt.get(m)) if t.gt.get(m) is not None else "" for m in t.metrics]


#: Characters with a meaning in (GitHub) Markdown: backslash-escaped. HTML's `<`, `>` and `&` become
#: entities instead, so a name such as `<img src=x onerror=...>` shows as text and never as markup.
_MD_PUNCTUATION = frozenset("\\`*_[]|~#!")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def _md_escape(s: str) -> str:
    """Text from the database (dataset folder names, model labels, devices, notes) as literal Markdown:
    inline only (line breaks become spaces), no emphasis, links, images, HTML or table cells."""
    out = []
    for ch in " ".join(str(s).splitlines()):
        out.append(_MD_ENTITIES.get(ch) or ("\\" + ch if ch in _MD_PUNCTUATION else ch))
    return "".join(out)


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                   "<": r"$<$", ">": r"$>$", "|": r"$|$"}


def _latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in s)


def _code_spans(text: str, start: str, end: str) -> str:
    """`command` spans of an (already escaped) note as code in LaTeX or HTML."""
    return re.sub(r"`([^`]+)`", lambda m: f"{start}{m.group(1)}{end}", text)


def render_latex(tables: Sequence[Table]) -> str:
    """booktabs tables (\\usepackage{booktabs}); best values in \\textbf, arrows in math mode."""
    parts: list[str] = ["% requires \\usepackage{booktabs}"]
    for t in tables:
        cols = ["Model"] + [header(m, latex=True) for m in t.metrics] + ["fps"]
        lines = [r"\begin{table}[t]", r"\centering", r"\small",
                 rf"\caption{{{_latex_escape(t.title)} ({_latex_escape(t.subtitle)})}}",
                 r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}", r"\toprule",
                 " & ".join(cols) + r" \\", r"\midrule"]
        for r in t.rows:
            cells = [_latex_escape(r.label) + (r"$^\dagger$" if r.unverified else "")]
            for m in t.metrics:
                v, ann = _value_parts(r.cells[m])
                if r.cells[m].best:
                    v = rf"\textbf{{{v}}}"
                cells.append(v + (rf" {{\scriptsize {_latex_escape(ann)}}}" if ann else ""))
            cells.append(_fmt(r.fps, 2) if r.fps is not None else "n/a")
            lines.append(" & ".join(cells) + r" \\")
        gt_row = _gt_cells(t)
        if gt_row:
            lines += [r"\midrule", r"\textit{GT (reference)} & " + " & ".join(gt_row) + r" & \\"]
        lines += [r"\bottomrule", r"\end{tabular}"]
        notes = _footnotes(t) + [f"{r.label}: {r.citation}" for r in t.rows if r.citation]
        if notes:
            text = r" \\ ".join(_code_spans(_latex_escape(n).replace("†", r"$^\dagger$"), r"\texttt{", "}")
                               for n in notes)
            lines.append(rf"\par\smallskip{{\footnotesize {text}}}")
        lines.append(r"\end{table}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def render_csv(tables: Sequence[Table]) -> str:
    """One row per (table, model); every row names its dataset, protocol, flow and reference mode."""
    metrics: list[str] = sorted({m for t in tables for m in t.metrics}, key=_metric_sort_key)
    cols = ["dataset", "protocol", "flow", "reference_mode", "dataset_checksum", "model", "model_id", "run_id",
            "unverified_weights", "fps", "device", "n_clips", "n_frames", "citation"]
    for m in metrics:
        cols += [m, f"{m}_ci_lo", f"{m}_ci_hi", f"{m}_best"]
    cols.append("notes")  # why a value is empty or ranks last (non-finite), as the other formats' notes say
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for t in tables:
        for r in t.rows:
            row: list[Any] = [t.dataset, t.protocol, flow_label(t.flow), t.reference_mode, t.dataset_checksum, r.model,
                              r.model_id, r.run_id, int(r.unverified), _csv_num(r.fps), r.device, r.n_clips, r.n_frames,
                              r.citation]
            for m in metrics:
                c = r.cells.get(m)
                row += ([_csv_num(c.value), _csv_num(c.lo), _csv_num(c.hi), int(c.best)] if c else ["", "", "", ""])
            row.append("; ".join(c.note for c in r.cells.values() if c.note))
            w.writerow(row)
    return buf.getvalue()


def _csv_num(v: float | None) -> str:
    return "" if v is None or not math.isfinite(float(v)) else repr(float(v))


def render_json(tables: Sequence[Table]) -> str:
    """Strict JSON: a non-finite number is null, and the cell's `note` (and the table's notes) say why."""
    return json.dumps({"tables": [json_ready(t.as_dict()) for t in tables]}, indent=2, allow_nan=False) + "\n"


def render_html_tables(tables: Sequence[Table]) -> str:
    """HTML fragment: one <section> per table (used by `render_html` and the HTML report)."""
    out: list[str] = []
    for t in tables:
        e = html.escape
        head = "".join(f"<th>{e(header(m))}</th>" for m in t.metrics)
        rows = []
        for r in t.rows:
            tds = [f'<th scope="row">{e(r.label)}{"<sup>†</sup>" if r.unverified else ""}</th>']
            for m in t.metrics:
                v, ann = _value_parts(r.cells[m])
                v = f"<strong>{e(v)}</strong>" if r.cells[m].best else e(v)
                tds.append(f'<td class="num">{v}' + (f' <span class="ci">{e(ann)}</span>' if ann else "") + "</td>")
            tds.append(f'<td class="num">{e(_fmt(r.fps, 2)) if r.fps is not None else "n/a"}</td>')
            tds.append(f"<td>{e(r.device)}</td><td class=\"num\">{r.run_id}</td><td class=\"cite\">{e(r.citation)}</td>")
            rows.append("<tr>" + "".join(tds) + "</tr>")
        gt_row = _gt_cells(t)
        if gt_row:
            rows.append('<tr class="gt"><th scope="row"><em>GT (reference)</em></th>'
                        + "".join(f'<td class="num">{e(c)}</td>' for c in gt_row) + "<td></td><td></td><td></td><td></td></tr>")
        notes = "".join(f"<li>{_code_spans(e(n), '<code>', '</code>')}</li>" for n in _footnotes(t))
        out.append(
            f'<section class="leaderboard" data-dataset="{e(t.dataset)}" data-protocol="{e(t.protocol)}">'
            f"<h2>{e(t.title)}</h2><p class=\"sub\">{e(t.subtitle)}</p>"
            f'<div class="scroll"><table><thead><tr><th>model</th>{head}<th>fps</th><th>device</th><th>run</th><th>citation</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>" + (f'<ul class="notes">{notes}</ul>' if notes else "")
            + "</section>")
    return "\n".join(out)


TABLE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;background:#fff}
table{border-collapse:collapse;margin:.5em 0 1em}
th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:left}
thead th{border-bottom:2px solid #444}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ci{color:#777;font-size:.8em;display:block}
.scroll{overflow-x:auto;max-width:100%}
.sub{color:#555;margin-top:-.6em}
tr.gt{color:#666;background:#fafafa}
ul.notes{color:#555;font-size:.9em}
"""


def render_html(tables: Sequence[Table], title: str = "vcbench leaderboard") -> str:
    e = html.escape
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{TABLE_CSS}</style></head><body><h1>{e(title)}</h1>\n{render_html_tables(tables)}\n</body></html>\n")


RENDERERS = {"md": render_markdown, "csv": render_csv, "latex": render_latex, "html": render_html, "json": render_json}


def render(tables: Sequence[Table], fmt: str) -> str:
    if fmt not in RENDERERS:
        raise InputError(f"unknown leaderboard format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    return RENDERERS[fmt](tables)


# --------------------------------------------------------------------------------------- export
def export_values(db: ResultsDB, path: str | Path, kind: str, runs: Sequence[RunRecord]) -> int:
    """Write per-clip (`kind="clips"`) or per-frame (`"frames"`) values of `runs` to CSV or Parquet.

    Long format, one value per row, with the run's id, model, dataset and protocol, so the file can be
    filtered and pivoted without the database. Returns the number of rows written.
    """
    import pandas as pd

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError("export file must end in .csv or .parquet", path=path)
    ids = [r.id for r in runs if r.id is not None]
    if kind == "clips":
        rows = db.clip_rows(ids)
        cols = ["run_id", "model", "dataset", "protocol", "clip", "metric", "value"]
    elif kind == "frames":
        rows = db.frame_rows(ids)
        cols = ["run_id", "model", "dataset", "protocol", "clip", "metric", "frame", "value"]
    else:
        raise ValueError(f"kind must be 'clips' or 'frames', not {kind!r}")
    df = pd.DataFrame.from_records(rows, columns=cols)
    df["value"] = df["value"].astype("float64")
    if kind == "frames":
        df["frame"] = df["frame"].astype("int64")
    df["run_id"] = df["run_id"].astype("int64")
    try:
        with atomic_path(path, suffix=suffix + ".part") as tmp:
            if suffix == ".csv":
                df.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False, engine="pyarrow")
    except ImportError as exc:
        raise VcbenchError("writing Parquet needs pyarrow", path=path, hint="pip install pyarrow, or export .csv") from exc
    return len(df)
