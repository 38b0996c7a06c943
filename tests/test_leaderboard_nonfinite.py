"""Non-finite values in every leaderboard format (issue 10, point 11).

`gray` has colourfulness 0, so its closeness to the GT, |log(0/GT)|, is infinite: `--format json`
used to crash with "Out of range float values are not JSON compliant: inf". The rows here are what
the harness writes: `vcbench evaluate --model gray` (and reinhard) on a slice of the bundled sample.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re

import pytest

from report_fixtures import synthetic_run
from vcbench.cli import main
from vcbench.reports.db import ResultsDB

SAMPLE_OPTS = ["--dataset-option", "frames=3", "--dataset-option", "width=48", "--dataset-option", "clips=bikes,carphone"]
FORMATS = ("md", "csv", "latex", "html", "json")


def _strict_json(text: str):
    """json.loads that refuses Infinity/NaN (Python's default accepts them; browsers and jq do not)."""
    def refuse(name: str):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def gray_db(tmp_path_factory):
    root = tmp_path_factory.mktemp("nonfinite")
    mp = pytest.MonkeyPatch()
    mp.setenv("VCBENCH_CACHE_DIR", str(root / "cache"))
    mp.delenv("VCBENCH_DB", raising=False)
    try:
        for model in ("gray", "reinhard"):
            rc = main(["evaluate", "--model", model, "--dataset", "sample", *SAMPLE_OPTS, "--db", str(root / "r.sqlite"),
                       "--metrics", "psnr,colorfulness", "--flow", "dis", "--device", "cpu", "--quiet"])
            assert rc == 0
    finally:
        mp.undo()
    return root / "r.sqlite"


def _leaderboard(db, fmt, capsys) -> str:
    capsys.readouterr()
    assert main(["leaderboard", "--db", str(db), "--format", fmt, "--resamples", "200"]) == 0
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return cap.out


def test_gray_run_really_has_an_infinite_closeness(gray_db):
    gray = next(r for r in ResultsDB(gray_db).runs() if r.model == "gray")
    assert gray.metrics["colorfulness"] == 0.0 and gray.gt_metrics["colorfulness"] > 0
    from vcbench.reports.stats import dataset_closeness

    assert dataset_closeness(gray, "colorfulness") == math.inf


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_a_gray_row_and_says_why(gray_db, fmt, capsys):
    out = _leaderboard(gray_db, fmt, capsys)
    assert not re.search(r"\b(inf|Infinity|nan|NaN)\b", out)  # no non-finite number printed as one
    assert "infinite" in out  # the reason, in the notes of md/latex/html/json and the csv notes column
    if fmt == "json":
        table = _strict_json(out)["tables"][0]
        rows = {r["model"]: r for r in table["rows"]}
        cell = rows["gray"]["cells"]["colorfulness"]
        assert cell["value"] == 0.0 and cell["rank_key"] is None and "infinite" in cell["note"]
        assert cell["best"] is False and rows["reinhard"]["cells"]["colorfulness"]["best"] is True
        assert rows["reinhard"]["cells"]["colorfulness"]["rank_key"] > 0
        assert any(n.startswith("gray: colorfulness") for n in table["notes"])
    elif fmt == "csv":
        rows = {r["model"]: r for r in csv.DictReader(io.StringIO(out))}
        assert rows["gray"]["colorfulness"] == "0.0" and rows["gray"]["colorfulness_best"] == "0"
        assert "infinite" in rows["gray"]["notes"] and rows["reinhard"]["notes"] == ""
        assert rows["reinhard"]["colorfulness_best"] == "1"


def test_a_stored_infinity_is_null_with_its_reason_in_every_format(tmp_path, capsys):
    db = ResultsDB(tmp_path / "r.sqlite")
    run = synthetic_run("reinhard", seed=3)
    run.metrics["psnr"] = math.inf  # SQLite stores inf as REAL; an older or foreign writer can leave one
    db.record(run)
    db.record(synthetic_run("gray", psnr_shift=-3.0, colour_scale=0.05, seed=1))
    assert ResultsDB(db.path).runs()[0].metrics["psnr"] == math.inf
    for fmt in FORMATS:
        out = _leaderboard(db.path, fmt, capsys)
        assert "recorded as inf, not a finite number" in out, fmt
        if fmt == "json":
            rows = {r["model"]: r for r in _strict_json(out)["tables"][0]["rows"]}
            assert rows["reinhard"]["cells"]["psnr"]["value"] is None
            assert rows["gray"]["cells"]["psnr"]["best"] is True


def test_evaluate_json_of_a_reused_run_with_a_stored_infinity(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VCBENCH_CACHE_DIR", str(tmp_path / "cache"))
    argv = ["evaluate", "--model", "gray", "--dataset", "sample", *SAMPLE_OPTS, "--db", str(tmp_path / "r.sqlite"),
            "--metrics", "psnr", "--flow", "dis", "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "r.sqlite") as c:
        c.execute("UPDATE clip_metrics SET value = ? WHERE metric = 'psnr'", (math.inf,))
    assert main(argv + ["--json", str(tmp_path / "out.json")]) == 0
    data = _strict_json((tmp_path / "out.json").read_text())
    assert data["run"]["reused"] is True and all(v["psnr"] is None for v in data["per_clip"].values())
