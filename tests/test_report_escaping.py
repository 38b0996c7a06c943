"""Names from the database are text, never markup or a shared file name (issue 10, point 14).

A dataset given as a folder is named after that folder, and clips after their files: a folder named
`<img src=x onerror=...>` must show as text in the Markdown leaderboard (the title and every cell),
and clips `a b` and `a-b` (which file names turn into the same `a-b`) must get separate figures.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from markdown_it import MarkdownIt

from report_fixtures import run_cli, synthetic_run
from vcbench.frames import read_image, write_frames
from vcbench.reports.db import ResultsDB
from vcbench.reports.leaderboard import build_tables, name_slug, render
from vcbench.reports.plots import make_plots

HOSTILE = "<img src=x onerror=alert(1)>"


def _hostile_db(path):
    db = ResultsDB(path)
    run = synthetic_run("reinhard", dataset=HOSTILE, seed=3)
    run.device = "cpu | <b>fast</b> *bold* [x](javascript:alert(1))"
    run.model_config = {"k": "v"}
    db.record(run)
    other = synthetic_run("my_model|<script>alert(2)</script>", dataset=HOSTILE, seed=4, psnr_shift=1.0)
    db.record(other)
    return db


def _rendered(md: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(md)


def test_markdown_title_and_cells_are_text(tmp_path):
    db = _hostile_db(tmp_path / "r.sqlite")
    md = render(build_tables(db.runs(), n_resamples=200), "md")
    page = _rendered(md)
    # no tag from the database reaches the HTML a Markdown viewer makes; every name shows as text
    assert not re.search(r"<(img|script|b)\b", page), page
    assert "<a " not in page and "<em>" not in page.split("<table>")[1].split("</table>")[0].replace(
        "<em>GT (reference)</em>", "")
    assert f"<h3>{HOSTILE.replace('<', '&lt;').replace('>', '&gt;')}: protocol vcbench-v1/dis</h3>" in page
    assert "my_model|&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "cpu | &lt;b&gt;fast&lt;/b&gt; *bold* [x](javascript:alert(1))" in page
    # a "|" in a name does not split the row: every body row has the header's cell count (model, citation,
    # the metrics, device...: 10 columns)
    table = page.split("<table>")[1]
    n_head = len(re.findall(r"<th[ >]", table.split("</thead>")[0]))
    rows = table.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert len(rows) == 3 and n_head == 10 and all(len(re.findall(r"<td[ >]", r)) == n_head for r in rows)


def test_markdown_cli_with_a_hostile_folder_name(tmp_path):
    db = _hostile_db(tmp_path / "r.sqlite")
    rc, out, err = run_cli(["leaderboard", "--db", str(db.path), "--resamples", "200"], ["leaderboard"])
    assert rc == 0, err
    assert HOSTILE not in out and "&lt;img src=x onerror=alert(1)&gt;" in out.splitlines()[0]


def test_clips_whose_names_differ_only_in_replaced_characters_get_separate_figures(tmp_path):
    clips = ("a b", "a-b", "a/b")
    assert len({name_slug(c) for c in clips}) == 3 and name_slug("a-b") == "a-b"  # plain names unchanged
    db = ResultsDB(tmp_path / "r.sqlite")
    db.record(synthetic_run("reinhard", seed=3, clips=clips[:2]))
    db.record(synthetic_run("gray", seed=1, psnr_shift=-3.0, colour_scale=0.05, clips=clips[:2]))
    frames = tmp_path / "saved"
    rng = np.random.default_rng(0)
    for k, clip in enumerate(clips[:2]):  # different pictures per clip, so the two strips must differ
        img = np.zeros((4, 32, 48, 3), np.uint8)
        img[..., k] = 200
        img += rng.integers(0, 40, img.shape, dtype=np.uint8)
        for model in ("reinhard", "gray"):
            write_frames(frames / model / clip, img)
    files = make_plots(db, tmp_path / "plots", frames=frames, n_resamples=200)
    curves = [f for f in files if f.kind == "curves"]
    strips = [f for f in files if f.kind == "strip"]
    assert len(curves) == 2 and len(strips) == 2
    assert len({f.path for f in curves}) == 2 and len({f.path for f in strips}) == 2
    assert {f.path.name for f in strips} == {f"strip_sample_vcbench-v1-dis_{name_slug(c)}.png" for c in clips[:2]}
    assert all(f.path.is_file() for f in curves + strips)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(f.path.name for f in files)
    a, b = (read_image(f.path) for f in strips)
    assert a.shape != b.shape or not np.array_equal(a, b)  # each clip's own figure, not one overwritten
