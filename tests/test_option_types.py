"""Typed option values (issue 10, point 6): a value of the wrong type is one line naming the option and
the type it expects, exit 2, no traceback: `--dataset-option`, `--model-option` and every int/float flag."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

from vcbench.cli import main
from vcbench.errors import InputError
from vcbench.options import coerce

EVAL = ["evaluate", "--dataset", "sample", "--metrics", "psnr", "--flow", "dis", "--device", "cpu", "--quiet"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("VCBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCBENCH_DB", str(tmp_path / "r.sqlite"))
    return tmp_path


def _one_line_error(capsys, argv: list[str]) -> str:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors exit through SystemExit
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, (argv, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("model, option, expected", [
    ("reinhard", ("--dataset-option", "frames=abc"), "frames expects an integer"),
    ("reinhard", ("--dataset-option", "width=1.5"), "width expects an integer"),
    ("reinhard", ("--dataset-option", "clips={}"), "clips expects a string or a JSON list of strings"),
    ("welsh", ("--model-option", "samples=abc"), "samples expects an integer"),
    ("welsh", ("--model-option", "window=2.5"), "window expects an integer"),
    ("welsh", ("--model-option", "weight=heavy"), "weight expects a number"),
    ("propagate", ("--model-option", "seed=true"), "seed expects an integer"),
    ("devc", ("--model-option", "geometry=square"), "geometry expects one of official, leaderboard, pad"),
    ("devc", ("--model-option", "net_area=big"), "net_area expects an integer"),
    ("devc", ("--model-option", "net_scale=half"), "net_scale expects a number"),
    ("devc", ("--model-option", "hard_argmax=maybe"), "hard_argmax expects true or false"),
    ("devc", ("--model-option", "precision=fp8"), "precision expects one of fp32, fp16, bf16"),
    ("zhang16", ("--model-option", "net_size=abc"), "net_size expects an integer"),
])
def test_dataset_and_model_options_name_option_and_type(env, capsys, model, option, expected):
    line = _one_line_error(capsys, [*EVAL, "--model", model, *option])
    assert line.startswith(f"vcbench: error: {option[0]} {option[1].split('=')[0]}=") and expected in line, line


def test_imagenet_limit_is_checked_before_looking_for_the_data(env, capsys):
    line = _one_line_error(capsys, [*EVAL, "--model", "gray", "--dataset", "imagenet-ctest10k",
                                    "--data-root", str(env / "nowhere"), "--dataset-option", "limit=ten"])
    assert "--dataset-option limit=ten: limit expects an integer" in line


@pytest.mark.parametrize("argv, flag, kind", [
    ([*EVAL, "--model", "gray", "--batch-size", "abc"], "--batch-size", "an integer"),
    (["score", "--pred", "p", "--gt", "g", "--batch-size", "x"], "--batch-size", "an integer"),
    (["leaderboard", "--resamples", "many"], "--resamples", "an integer"),
    (["compare", "a", "b", "--resamples", "1e3"], "--resamples", "an integer"),
    (["plot", "--out", "o", "--resamples", "x"], "--resamples", "an integer"),
    (["build-dataset", "--source", "sample", "--out", "o", "--clips", "1.5"], "--clips", "an integer"),
    (["build-dataset", "--source", "sample", "--out", "o", "--seed", "s"], "--seed", "an integer"),
    (["build-dataset", "--source", "sample", "--out", "o", "--workers", "all"], "--workers", "an integer"),
    (["build-dataset", "--source", "sample", "--out", "o", "--gpus-per-task", "one"], "--gpus-per-task", "a number"),
    (["build-dataset", "--source", "sample", "--out", "o", "--nlist", "x"], "--nlist", "an integer"),
    (["build-dataset", "--source", "sample", "--out", "o", "--nprobe", "x"], "--nprobe", "an integer"),
    (["build-dataset", "--source", "sample", "--out", "o", "--pseudo-fraction", "a"], "--pseudo-fraction", "a number"),
    (["build-dataset", "--source", "sample", "--out", "o", "--clip-length", "x"], "--clip-length", "an integer"),
    (["build-dataset", "--source", "sample", "--out", "o", "--shard-size", "x"], "--shard-size", "an integer"),
    (["build-dataset", "--source", "sample", "--out", "o", "--min-interval", "x"], "--min-interval", "a number"),
])
def test_int_and_float_flags_are_one_line(env, capsys, argv, flag, kind):
    line = _one_line_error(capsys, argv)
    assert f"argument {flag}: invalid" in line and f"(expects {kind})" in line and "--help" in line, line


def test_values_of_the_right_type_still_pass():
    assert coerce("--x", "n", 8.0, int) == 8 and coerce("--x", "f", 2, float) == 2.0
    assert coerce("--x", "b", "yes", bool) is True and coerce("--x", "b", 0, bool) is False
    assert coerce("--x", "s", 3, str) == "3"  # JSON made the clip name '3' a number: names are text
    assert coerce("--x", "g", "pad", Literal["official", "pad"]) == "pad"
    assert coerce("--x", "l", None, int | None) is None and coerce("--x", "l", 5, int | None) == 5
    assert coerce("--x", "c", [1, "b"], str | list[str]) == ["1", "b"]
    with pytest.raises(InputError, match="n expects an integer"):
        coerce("--x", "n", True, int)  # a bool is not a count


def test_valid_typed_model_option_runs(env, capsys):
    assert main([*EVAL, "--model", "welsh", "--model-option", "samples=20", "--model-option", "weight=1",
                 "--dataset-option", "frames=2", "--dataset-option", "width=48", "--dataset-option", "clips=carphone"]) == 0
    from vcbench.reports.db import ResultsDB

    (run,) = ResultsDB(env / "r.sqlite").runs()
    assert run.model_config["samples"] == 20 and run.model_config["weight"] == 1.0


def test_through_the_installed_command(env):
    """A fresh process, as a user runs it: exit 2, one line on stderr, no traceback."""
    for option in (["--dataset-option", "frames=abc"], ["--model", "welsh", "--model-option", "samples=abc"]):
        argv = [sys.executable, "-m", "vcbench", *EVAL, "--model", "reinhard", *option]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=dict(os.environ))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "expects an integer" in lines[0] and option[-1].split("=")[0] in lines[0]
