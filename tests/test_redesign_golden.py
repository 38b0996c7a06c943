"""What the issue-12 redesign must not move, pinned byte for byte from the code before it started.

Each test compares today's output with a file in tests/data/golden/, written by the code of commit
0a1130e (before any redesign step). The benchmark checksum, the run key of one evaluate run, `metrics
list --json`, one `score --json` document (values at full precision, key order) and the Markdown
leaderboard of tests/report_fixtures.py's runs. Paths, timings and fps are left out; the versions of
OpenCV, PyAV and Pillow are part of the protocol (and so of the run key), so a different install of
those changes the files: regenerate them only then, never to make a refactoring pass
(`VCBENCH_REGEN_GOLDEN=1 python3 -m pytest -q tests/test_redesign_golden.py`, then read the diff).

One allowance: a JSON document that differs in bytes passes when it has the same keys in the same
order, the same strings and integers, and floats within 1e-12 relative. The last bits of a float64
sum depend on the CPU's vector width (numpy's and OpenCV's summation order): on a 2-core AMD EPYC
(AVX2) four CDC values of score_tiny.json moved by ~2e-16 relative from the machine that wrote the
file, with the code unchanged (5dbd14c fails there just the same).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from report_fixtures import build_db, run_cli

from vcbench.cli import main
from vcbench.benchmarks import load_benchmark

GOLDEN = Path(__file__).parent / "data" / "golden"
REGEN = os.environ.get("VCBENCH_REGEN_GOLDEN") == "1"

#: The README's data checksum of the default sample (3 clips, 24 frames, 256 px wide).
README_SAMPLE_CHECKSUM = "4ea796d939ae"
TINY_SAMPLE = {"frames": 3, "width": 48, "clips": "bikes,carphone"}
NO_WEIGHTS = "psnr,ssim,colorfulness,warp_error,flicker,cdc"


def _same_document(expected: str, text: str) -> bool:
    """Both JSON, equal but for floats within 1e-12 relative (see the module docstring)."""
    try:
        a, b = (json.loads(t, object_pairs_hook=list) for t in (expected, text))
    except ValueError:
        return False

    def same(x, y) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-12, abs_tol=0.0)
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(same(u, v) for u, v in zip(x, y))
        if isinstance(x, tuple) and isinstance(y, tuple):  # a (key, value) pair of an object
            return x[0] == y[0] and same(x[1], y[1])
        return type(x) is type(y) and x == y

    return same(a, b)


def check(name: str, text: str) -> None:
    """Compare `text` with the golden file `name` (or write it when regenerating)."""
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing; it is generated once from the code before the redesign"
    expected = path.read_text(encoding="utf-8")
    if text != expected and not _same_document(expected, text):
        diff = [f"line {i + 1}:\n  golden: {a}\n  now:    {b}"
                for i, (a, b) in enumerate(zip(expected.splitlines(), text.splitlines())) if a != b]
        if not diff:
            diff = [f"the first {min(len(expected.splitlines()), len(text.splitlines()))} lines agree; "
                    f"golden has {len(expected.splitlines())} lines, now {len(text.splitlines())}"]
        pytest.fail(f"{name} moved ({len(expected)} -> {len(text)} chars):\n" + "\n".join(diff[:8]))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VCBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_sample_checksum_is_the_readme_one(cache):
    bench = load_benchmark("sample")
    assert bench.checksum.startswith(README_SAMPLE_CHECKSUM)
    check("sample_checksum.txt", bench.checksum + "\n")


def test_evaluate_run_key(cache, tmp_path, capsys):
    out = tmp_path / "run.json"
    rc = main(["evaluate", "--model", "gray", "--dataset", "sample",
               *[a for k, v in TINY_SAMPLE.items() for a in ("--dataset-option", f"{k}={v}")],
               "--metrics", "psnr,colorfulness,flicker", "--flow", "dis", "--device", "cpu", "--quiet",
               "--db", str(tmp_path / "r.sqlite"), "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(out.read_text(encoding="utf-8"))
    run = doc["run"]
    identity = {"run_key": run["run_key"], "metrics": doc["metrics"], "gt_metrics": doc["gt_metrics"],
                "protocol": {k: v for k, v in doc["protocol"].items() if k not in ("device",)}}
    check("evaluate_gray_tiny.json", json.dumps(identity, indent=1) + "\n")


def test_metrics_list_json_bytes(torch_home, capsys):
    assert main(["metrics", "list", "--json"]) == 0
    check("metrics_list.json", capsys.readouterr().out.replace(str(torch_home), "$TORCH_HOME"))


def test_score_json_of_a_tiny_pair(gt_pred_dirs, capsys):
    pred, gt = gt_pred_dirs
    assert main(["score", "--pred", str(pred), "--gt", str(gt), "--metrics", NO_WEIGHTS, "--json", "-",
                 "--quiet", "--no-cache", "--flow", "dis"]) == 0
    check("score_tiny.json", capsys.readouterr().out)


def test_leaderboard_markdown_of_the_report_fixtures(tmp_path):
    db = build_db(tmp_path / "results.sqlite")
    rc, out, err = run_cli(["leaderboard", "--db", str(db.path), "--format", "md", "--resamples", "500"],
                           ["leaderboard"])
    assert rc == 0, err
    check("leaderboard_fixtures.md", out)
