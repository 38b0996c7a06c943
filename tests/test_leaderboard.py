"""Leaderboard tables from a results database of plain RunRecords: formats, bests, protocol separation."""

from __future__ import annotations

import csv
import io
import json
import re

import pandas as pd
import pytest

from report_fixtures import build_db, run_cli, synthetic_run
from vcbench.reports.db import ResultsDB
from vcbench.reports.leaderboard import build_tables, render
from vcbench.reports.stats import bootstrap_ci

MODS = ("leaderboard", "compare")


@pytest.fixture
def db(tmp_path):
    return build_db(tmp_path / "results.sqlite")


def test_tables_split_by_protocol_and_keep_latest_run_per_model(db):
    tables = build_tables(db.runs(), n_resamples=2000)
    assert [(t.dataset, t.protocol) for t in tables] == [("sample", "vcbench-v1/dis"), ("sample", "vcbench-v1/raft")]
    dis, raft = tables
    assert [r.model for r in dis.rows] == ["devc", "reinhard", "gray"]  # ordered by psnr, best first
    assert [r.model for r in raft.rows] == ["devc"]
    # the superseded reinhard run (psnr 9 dB lower) is not shown
    reinhard = next(r for r in dis.rows if r.model == "reinhard")
    assert reinhard.cells["psnr"].value == pytest.approx(next(
        r for r in db.runs() if r.model == "reinhard" and not r.identity_extra).metrics["psnr"])
    # both tables say that the dataset was split
    assert all("not comparable" in t.notes[0] for t in tables)
    assert dis.metrics == ["psnr", "lpips", "colorfulness", "fid", "flicker"]


def test_values_carry_bootstrap_intervals_and_bests(db):
    (dis, _) = build_tables(db.runs(), n_resamples=2000)
    devc = next(r for r in dis.rows if r.model == "devc")
    run = next(r for r in db.runs() if r.model == "devc" and r.protocol.endswith("dis"))
    ci = bootstrap_ci([run.per_clip[c]["psnr"] for c in run.per_clip], n_resamples=2000)
    cell = devc.cells["psnr"]
    assert (cell.value, cell.lo, cell.hi, cell.n) == (pytest.approx(run.metrics["psnr"]), ci.lo, ci.hi, 6)
    best = {m: [r.model for r in dis.rows if r.cells[m].best] for m in dis.metrics}
    # psnr/fid by highest/lowest, lpips lowest, flicker lowest; colourfulness by closeness to GT:
    # devc (x1.1) is closer than reinhard (x0.8) and gray (x0.05)
    assert best["psnr"] == ["devc"] and best["lpips"] == ["devc"] and best["fid"] == ["devc"]
    assert best["colorfulness"] == ["devc"]
    assert devc.cells["fid"].frames == 72 and devc.cells["fid"].lo is None
    assert any("FID pools 72 frames" in n for n in dis.notes)


def test_markdown(db):
    md = render(build_tables(db.runs(), n_resamples=2000), "md")
    assert "### sample: protocol vcbench-v1/dis" in md and "### sample: protocol vcbench-v1/raft" in md
    assert "| model | psnr ↑ | lpips ↓ | colorfulness ≈GT | fid ↓ | flicker ↓ |" in md
    devc_line = next(l for l in md.splitlines() if l.startswith("| devc †"))
    assert re.search(r"\*\*\d+\.\d+\*\* \[\d+\.\d+, \d+\.\d+\]", devc_line)
    assert "(72 frames)" in devc_line
    assert "† weights whose sha256 differs" in md
    gray_line = next(l for l in md.splitlines() if l.startswith("| gray"))
    assert "**" not in gray_line.split("|")[2]  # gray's psnr is not the best
    assert "_GT (reference)_" in md


def test_latex_structure(db):
    tex = render(build_tables(db.runs(), n_resamples=2000), "latex")
    assert tex.count(r"\begin{table}") == 2 == tex.count(r"\end{table}")
    assert tex.count(r"\toprule") == tex.count(r"\midrule") - 2 == tex.count(r"\bottomrule") == 2
    assert r"psnr $\uparrow$" in tex and r"lpips $\downarrow$" in tex and r"warp\_error $" not in tex
    assert r"(\textless" not in tex and r"(< 2048)" not in tex and r"($<$ 2048)" in tex
    assert r"\textbf{" in tex and r"devc$^\dagger$" in tex
    assert r"\caption{sample: protocol vcbench-v1/dis" in tex
    # every tabular row has the same number of columns as the header; braces balance
    for block in tex.split(r"\begin{tabular}")[1:]:
        spec = re.match(r"\{(l r*)\}", block.replace("{l", "{l ", 1)).group(1)
        ncol = len(spec.replace(" ", ""))
        body = block.split(r"\end{tabular}")[0]
        rows = [l for l in body.splitlines() if l.endswith(r"\\")]
        assert rows and all(l.count(" & ") == ncol - 1 for l in rows), rows
    assert tex.count("{") == tex.count("}")


def test_latex_escapes_model_names(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    db.record(synthetic_run("my_model&co", seed=1))
    tex = render(build_tables(db.runs(), n_resamples=500), "latex")
    assert r"my\_model\&co" in tex


def test_csv_rows_name_their_protocol(db):
    text = render(build_tables(db.runs(), n_resamples=2000), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["model"], r["protocol"]) for r in rows] == [
        ("devc", "vcbench-v1/dis"), ("reinhard", "vcbench-v1/dis"), ("gray", "vcbench-v1/dis"),
        ("devc", "vcbench-v1/raft")]
    devc = rows[0]
    assert float(devc["psnr_ci_lo"]) < float(devc["psnr"]) < float(devc["psnr_ci_hi"])
    assert devc["psnr_best"] == "1" and devc["unverified_weights"] == "1" and devc["flow"].startswith("dis")
    assert rows[2]["psnr_best"] == "0"


def test_json_and_html(db):
    data = json.loads(render(build_tables(db.runs(), n_resamples=2000), "json"))
    t0 = data["tables"][0]
    assert t0["protocol"] == "vcbench-v1/dis" and t0["directions"]["colorfulness"] == "closer"
    assert t0["rows"][0]["cells"]["psnr"]["best"] is True
    page = render(build_tables(db.runs(), n_resamples=2000), "html")
    assert page.startswith("<!DOCTYPE html>") and page.count("<table>") == 2
    assert "<strong>" in page and "<sup>†</sup>" in page and 'data-protocol="vcbench-v1/raft"' in page


def test_cli_formats_filters_and_exports(db, tmp_path):
    path = str(db.path)
    rc, out, _ = run_cli(["leaderboard", "--db", path, "--protocol", "vcbench-v1/raft", "--resamples", "500"], MODS)
    assert rc == 0 and "vcbench-v1/raft" in out and "vcbench-v1/dis" not in out
    for fmt in ("md", "csv", "latex", "html", "json"):
        target = tmp_path / f"lb.{fmt}"
        rc, out, err = run_cli(["leaderboard", "--db", path, "--format", fmt, "--out", str(target),
                                "--resamples", "500"], MODS)
        assert rc == 0 and out == "" and target.stat().st_size > 200, (fmt, err)
    rc, out, _ = run_cli(["leaderboard", "--db", path, "--json", "--resamples", "500"], MODS)
    assert len(json.loads(out)["tables"]) == 2
    clips, frames = tmp_path / "clips.parquet", tmp_path / "frames.csv"
    rc, _, err = run_cli(["leaderboard", "--db", path, "--dataset", "sample", "--export-clips", str(clips),
                          "--export-frames", str(frames), "--resamples", "500"], MODS)
    assert rc == 0, err
    dfc = pd.read_parquet(clips)
    assert set(dfc["model"]) == {"gray", "reinhard", "devc"} and len(dfc) == 4 * 6 * 4  # 4 runs x 6 clips x 4 metrics
    devc = next(r for r in db.runs() if r.model == "devc" and r.protocol.endswith("dis"))
    got = dfc[(dfc["run_id"] == devc.id) & (dfc["clip"] == "boat") & (dfc["metric"] == "psnr")]["value"].item()
    assert got == pytest.approx(devc.per_clip["boat"]["psnr"])
    dff = pd.read_csv(frames)
    assert list(dff.columns) == ["run_id", "model", "dataset", "protocol", "clip", "metric", "frame", "value"]
    sel = dff[(dff["run_id"] == devc.id) & (dff["clip"] == "camel") & (dff["metric"] == "flicker")].sort_values("frame")
    full = db.get(devc.id)
    assert sel["value"].tolist() == pytest.approx(full.per_frame["camel"]["flicker"])


def test_cli_user_errors(db, tmp_path):
    rc, _, err = run_cli(["leaderboard", "--db", str(tmp_path / "missing.sqlite")], MODS)
    assert rc == 2 and "no results database" in err and "Traceback" not in err
    assert not (tmp_path / "missing.sqlite").exists()
    rc, _, err = run_cli(["leaderboard", "--db", str(db.path), "--dataset", "davis30"], MODS)
    assert rc == 2 and "it holds: sample (vcbench-v1/dis), sample (vcbench-v1/raft)" in err
    rc, out, err = run_cli(["leaderboard", "--db", str(db.path), "--metrics", "psnr,lpips", "--format", "csv",
                            "--resamples", "200"], MODS)
    assert rc == 0 and "psnr_ci_lo" in out and "flicker" not in out
    rc, _, err = run_cli(["leaderboard", "--db", str(db.path), "--metrics", "psnr,warp"], MODS)
    assert rc == 2 and "no recorded run has metric(s) warp" in err
    rc, _, err = run_cli(["leaderboard", "--db", str(db.path), "--export-clips", str(tmp_path / "x.xlsx")], MODS)
    assert rc == 2 and ".csv or .parquet" in err and not (tmp_path / "x.xlsx").exists()


def test_compare_cli(db):
    path = str(db.path)
    # devc has runs under two protocols, reinhard under one: the shared setting is picked
    rc, out, err = run_cli(["compare", "devc", "reinhard", "--db", path, "--json", "--resamples", "2000"], MODS)
    assert rc == 0, err
    assert json.loads(out)["protocol"] == "vcbench-v1/dis"
    res = {r["metric"]: r for r in json.loads(out)["results"]}
    assert res["psnr"]["better"] == "A" and res["psnr"]["significant"] and res["psnr"]["n"] == 6
    assert res["psnr"]["diff"] == pytest.approx(1.5, abs=0.1)
    assert res["lpips"]["better"] == "A" and res["fid"]["note"].startswith("pooled")
    assert res["colorfulness"]["quantity"] == "|log(colorfulness/GT)|" and res["colorfulness"]["better"] == "A"
    rc, out, _ = run_cli(["compare", "devc", "reinhard", "--db", path, "--dataset", "sample",
                          "--protocol", "vcbench-v1/dis", "--resamples", "2000"], MODS)
    assert rc == 0 and "95% CI of A-B" in out and "A (significant)" in out
    # run ids work, and runs under different protocols are refused
    raft = next(r for r in db.runs() if r.protocol.endswith("raft"))
    rc, _, err = run_cli(["compare", str(raft.id), "reinhard", "--db", path], MODS)
    assert rc == 2 and "no benchmark set and protocol in common" in err
    rc, _, err = run_cli(["compare", "devc", "nosuchmodel", "--db", path], MODS)
    assert rc == 2 and "no recorded run of 'nosuchmodel'" in err


def test_compare_asks_which_setting_when_ambiguous(db):
    db.record(synthetic_run("reinhard", protocol="vcbench-v1/raft", estimator="raft", seed=9))
    rc, _, err = run_cli(["compare", "devc", "reinhard", "--db", str(db.path)], MODS)
    assert rc == 2 and "several settings" in err and "--protocol vcbench-v1/raft" in err
    rc, out, err = run_cli(["compare", "devc", "reinhard", "--db", str(db.path), "--protocol", "vcbench-v1/raft",
                            "--json", "--resamples", "1000"], MODS)
    assert rc == 0 and json.loads(out)["protocol"] == "vcbench-v1/raft"


def test_registered_in_the_real_cli(db, capsys):
    from vcbench.cli import COMMAND_MODULES, main

    assert {"leaderboard", "compare", "plot", "report"} <= set(COMMAND_MODULES)
    assert main(["leaderboard", "--db", str(db.path), "--format", "json", "--resamples", "200"]) == 0
    assert len(json.loads(capsys.readouterr().out)["tables"]) == 2
    assert main(["compare", "gray", "nosuch", "--db", str(db.path)]) == 2
    assert "no recorded run of 'nosuch'" in capsys.readouterr().err
