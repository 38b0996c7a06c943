"""The HTML report: leaderboard tables, figures, per-clip values and run provenance on one page.

A static page with no JavaScript and no external resources (CSS inline; figures beside it in
`plots/`, or inlined as data URIs with `embed=True` for a single-file report), so it opens from a
laptop, a CI artefact or an e-mail attachment alike. Built with plain string templates and
`html.escape`: the page is simple enough that a template engine would add a dependency and no safety.
"""

from __future__ import annotations

import base64
import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vcbench import __version__
from vcbench.atomic import atomic_write_text
from vcbench.citations import citation
from vcbench.reports.db import ResultsDB, RunRecord
from vcbench.reports.leaderboard import N_RESAMPLES, TABLE_CSS, Table, _fmt, build_tables, header, render_html_tables
from vcbench.reports.plots import PlotFile, make_plots, table_slug
from vcbench.metrics.registry import Direction
from vcbench.reports.stats import ranking, ranking_values

REPORT_CSS = TABLE_CSS + """
h2{margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
h3{margin-top:1.4em}
.figs{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
figure{margin:0;border:1px solid #e3e3e3;padding:6px;background:#fff}
figure img{display:block;max-width:100%;height:auto}
figcaption{font-size:.8em;color:#555;max-width:640px}
details{margin:.8em 0}
summary{cursor:pointer;font-weight:600}
table.clips td,table.clips th{font-size:.9em;padding:.2em .6em}
table.runs td,table.runs th{font-size:.85em;vertical-align:top}
code{font-size:.85em}
"""

_KIND_TITLES = (("bar", "Per-metric comparison"), ("speed", "Quality versus speed"),
                ("curves", "Per-frame temporal metrics"), ("strip", "Frame strips"))


def _img_src(path: Path, out_dir: Path, embed: bool) -> str:
    if embed:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return path.relative_to(out_dir).as_posix()


def _figure(pf: PlotFile, out_dir: Path, embed: bool) -> str:
    e = html.escape
    return (f'<figure class="{e(pf.kind)}"><img src="{e(_img_src(pf.path, out_dir, embed))}" alt="{e(pf.caption)}" '
            f'loading="lazy"><figcaption>{e(pf.caption)}</figcaption></figure>')


def _figures_html(t: Table, plots: Sequence[PlotFile], out_dir: Path, embed: bool) -> str:
    parts: list[str] = []
    mine = [p for p in plots if p.table == table_slug(t)]
    for kind, title in _KIND_TITLES:
        figs = [p for p in mine if p.kind == kind]
        if not figs:
            continue
        body = '<div class="figs">' + "".join(_figure(p, out_dir, embed) for p in figs) + "</div>"
        if kind == "curves" and len(figs) > 4:  # many clips: fold them away, no script needed
            body = f"<details><summary>{len(figs)} clips</summary>{body}</details>"
        parts.append(f"<h3>{html.escape(title)}</h3>{body}")
    return "".join(parts)


def _per_clip_html(t: Table, runs: Mapping[int, RunRecord]) -> str:
    """Rows (clip, model), columns the table's per-clip metrics; per clip, the best model is bold."""
    e = html.escape
    metrics = [m for m in t.metrics if any(m in vals for r in runs.values() for vals in r.per_clip.values())]
    if not metrics:
        return ""
    row_runs = [(row.label, runs[row.run_id]) for row in t.rows if row.run_id in runs]
    clips: dict[str, None] = {}
    for _, r in row_runs:
        for c in r.per_clip:
            clips.setdefault(c, None)
    body: list[str] = []
    for clip in clips:
        best: dict[str, float] = {}
        keys: dict[tuple[str, str], float] = {}
        for label, r in row_runs:
            for m in metrics:
                d = ranking(m)
                k = ranking_values(r, m).get(clip)
                if k is None or d is None:
                    continue
                k = -k if d is Direction.HIGHER else k
                keys[(label, m)] = k
                best[m] = min(best.get(m, math.inf), k)
        for i, (label, r) in enumerate(row_runs):
            vals = r.per_clip.get(clip, {})
            cells = []
            for m in metrics:
                v = vals.get(m)
                text = e(_fmt(v)) if v is not None else "n/a"
                k = keys.get((label, m))
                if k is not None and len(row_runs) > 1 and math.isclose(k, best[m], rel_tol=1e-12, abs_tol=1e-15):
                    text = f"<strong>{text}</strong>"
                cells.append(f'<td class="num">{text}</td>')
            clip_cell = f'<th scope="rowgroup" rowspan="{len(row_runs)}">{e(clip)}</th>' if i == 0 else ""
            body.append(f"<tr>{clip_cell}<td>{e(label)}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{e(header(m))}</th>" for m in metrics)
    table = (f'<table class="clips"><thead><tr><th>clip</th><th>model</th>{head}</tr></thead>'
             f"<tbody>{''.join(body)}</tbody></table>")
    return f"<h3>Per-clip values</h3><details open><summary>{len(clips)} clips</summary>{table}</details>"


def _runs_html(t: Table, runs: Mapping[int, RunRecord]) -> str:
    """Provenance of every run in the table: what a reader needs to reproduce or question a number."""
    e = html.escape
    rows = []
    for row in t.rows:
        r = runs.get(row.run_id)  # type: ignore[arg-type]
        if r is None:
            continue
        weights = "<br>".join(f"<code>{e(f)}</code> {e(h[:12])}" for f, h in sorted(r.weights.items())) or "none"
        versions = ", ".join(f"{e(k)} {e(str(v))}" for k, v in sorted(r.versions.items()))
        config = ", ".join(f"{e(k)}={e(str(v))}" for k, v in sorted(r.model_config.items())) or "default"
        flag = ' <sup title="unverified weights">†</sup>' if r.unverified_weights else ""
        rows.append(f"<tr><td class=\"num\">{r.id}</td><td>{e(r.model)}{flag}</td><td>{config}</td>"
                    f"<td>{weights}</td><td>{e(r.device)}</td><td class=\"num\">{e(_fmt(r.fps, 2)) if r.fps else 'n/a'}</td>"
                    f"<td class=\"num\">{r.n_clips} / {r.n_frames}</td><td>{e(r.created[:19])}Z</td><td>{versions}</td></tr>")
    return ("<h3>Runs</h3><table class=\"runs\"><thead><tr><th>run</th><th>model</th><th>config</th><th>weights (sha256)</th>"
            "<th>device</th><th>fps</th><th>clips / frames</th><th>created (UTC)</th><th>versions</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def render_report(tables: Sequence[Table], runs: Mapping[int, RunRecord], plots: Sequence[PlotFile], out_dir: Path,
                  *, embed: bool = False, db_path: str | Path | None = None, title: str = "vcbench report") -> str:
    """The whole page as a string (figures referenced relative to `out_dir`, or embedded)."""
    e = html.escape
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    toc = "".join(f'<li><a href="#t{i}">{e(t.title)}</a> <span class="sub">({e(t.subtitle)})</span></li>'
                  for i, t in enumerate(tables))
    sections = []
    for i, t in enumerate(tables):
        sections.append(
            f'<section id="t{i}">' + render_html_tables([t]) + _figures_html(t, plots, out_dir, embed)
            + _per_clip_html(t, runs) + _runs_html(t, runs) + "</section>")
    src = f" from <code>{e(str(db_path))}</code>" if db_path else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{e(title)}</title>"
            f"<style>{REPORT_CSS}</style></head><body>"
            f"<h1>{e(title)}</h1><p class=\"sub\">vcbench {e(__version__)}, {e(stamp)}{src}. Values are means over "
            "clips with 95% bootstrap intervals over clips; FID/KID pool all frames. Tables never mix protocols "
            f"or flow estimators.</p><ul class=\"toc\">{toc}</ul>\n" + "\n".join(sections) + "\n</body></html>\n")


def build_report(db: ResultsDB, out_dir: str | Path, *, dataset: str | None = None, protocol: str | None = None,
                 frames: Any = None, gt_root: str | Path | None = None,
                 gt_clips: Mapping[str, Any] | None = None, embed: bool = False,
                 n_resamples: int = N_RESAMPLES, cite: Callable[[str], str] = citation) -> Path:
    """Write `out_dir/index.html` (and `out_dir/plots/*.png`); returns the page's path.

    `frames` locates saved frames for the strips (`plots.FrameSources` or its specs); `cite` is
    `build_tables`' (the rows' citations)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    all_runs = db.runs(dataset=dataset, protocol=protocol)
    tables = build_tables(all_runs, n_resamples=n_resamples, cite=cite)
    plots = make_plots(db, out / "plots", dataset=dataset, protocol=protocol, frames=frames,
                       gt_root=gt_root, gt_clips=gt_clips, n_resamples=n_resamples, tables=tables)
    shown = {row.run_id for t in tables for row in t.rows}
    runs = {r.id: r for r in all_runs if r.id in shown}
    page = render_report(tables, runs, plots, out, embed=embed, db_path=db.path)
    path = out / "index.html"
    atomic_write_text(path, page)
    return path


__all__ = ["build_report", "render_report"]
