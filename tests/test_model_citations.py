"""Every leaderboard row carries its model's citation (a wrapped model cites base and wrapper) in the
Markdown, CSV, JSON, LaTeX and HTML tables and in the HTML report."""

from __future__ import annotations

import csv
import html
import io
import json

from report_fixtures import synthetic_run
from vcbench.baselines import registry
from vcbench.baselines.gray import Gray
from vcbench.baselines.registry import model_citation
from vcbench.cli import main
from vcbench.reports.db import ResultsDB
from vcbench.reports.leaderboard import build_tables, render

WELSH = "Welsh, Ashikhmin & Mueller, Transferring Color to Greyscale Images, SIGGRAPH 2002"
DVP = "Lei, Xing & Chen, Blind Video Temporal Consistency via Deep Video Prior, NeurIPS 2020"


def test_citations_of_models_and_wrapped_models():
    assert model_citation("welsh") == WELSH
    assert model_citation("welsh+dvp") == f"{WELSH}; {DVP}"
    assert "ECCV 2016" in model_citation("zhang16+lai18") and "ECCV 2018" in model_citation("zhang16+lai18")
    assert model_citation("no-such-model") == ""  # old runs of an uninstalled plug-in: no citation, no error


def test_every_format_carries_the_citation(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    db.record(synthetic_run("welsh", seed=1))
    db.record(synthetic_run("welsh+dvp", psnr_shift=-0.5, seed=2))
    tables = build_tables(db.runs())
    assert {r.model: r.citation for r in tables[0].rows} == {"welsh": WELSH, "welsh+dvp": f"{WELSH}; {DVP}"}
    md = render(tables, "md")
    assert md.splitlines()[4].endswith("| citation |")
    assert sum(1 for line in md.splitlines() if "Deep Video Prior, NeurIPS 2020" in line) == 1
    rows = list(csv.DictReader(io.StringIO(render(tables, "csv"))))
    assert {r["model"]: r["citation"] for r in rows}["welsh"] == WELSH
    js = json.loads(render(tables, "json"))
    assert {r["model"]: r["citation"] for r in js["tables"][0]["rows"]}["welsh+dvp"] == f"{WELSH}; {DVP}"
    assert "NeurIPS 2020" in render(tables, "latex")
    html = render(tables, "html")
    assert "<th>citation</th>" in html and html.count('<td class="cite">') == 2


def test_a_plugins_own_citation_reaches_the_leaderboard_and_report(tmp_path, monkeypatch, capsys):
    """A plug-in cites through its class attribute: the reports read only the built-in table, so the
    commands hand them the model registry's lookup (cli.common.cite_model)."""
    cite = "Doe & Roe, A Plug-in Colorizer, 2030"

    class Cited(Gray):
        citation = cite

    monkeypatch.setitem(registry.MODELS, "cited", registry.ModelEntry("cited", obj=Cited))
    db = ResultsDB(tmp_path / "r.sqlite")
    db.record(synthetic_run("cited", seed=1))
    db.record(synthetic_run("welsh", psnr_shift=-0.5, seed=2))
    assert {r.model: r.citation for r in build_tables(db.runs())[0].rows} == {"cited": "", "welsh": WELSH}
    assert main(["leaderboard", "--db", str(db.path), "--format", "json", "--resamples", "200"]) == 0
    rows = json.loads(capsys.readouterr().out)["tables"][0]["rows"]
    assert {r["model"]: r["citation"] for r in rows} == {"cited": cite, "welsh": WELSH}
    assert main(["report", "--db", str(db.path), "--out", str(tmp_path / "rep"), "--resamples", "200", "--quiet"]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert html.escape(cite) in page and html.escape(WELSH) in page
