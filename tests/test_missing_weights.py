"""Missing weights (issue 10, point 13): one line per missing file (FID and KID share one, top1 and top5
share one), each naming `vcbench weights download NAME` and where a copy goes; the same short form in
the leaderboard note, the LaTeX footnote and the HTML report; DEVC's hint names `--weights PATH`."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from report_fixtures import run_cli
from vcbench.cli import main
from vcbench.errors import WeightsError
from vcbench.reports.db import ResultsDB
from vcbench.reports.html import build_report
from vcbench.weights import REGISTRY, checkpoints_dir, missing_short, resolve

SAMPLE = ["--dataset", "sample", "--dataset-option", "frames=3", "--dataset-option", "width=48",
          "--dataset-option", "clips=bikes,carphone", "--flow", "dis", "--device", "cpu", "--quiet"]
FILES = {"alexnet": ("lpips",), "inception_fid": ("fid", "kid"), "vgg19": ("top1", "top5")}


@pytest.fixture(scope="module")
def gray_run(tmp_path_factory):
    """`vcbench evaluate --model gray` with every metric and an empty weight cache (tests are offline)."""
    root = tmp_path_factory.mktemp("missing")
    mp = pytest.MonkeyPatch()
    mp.setenv("VCBENCH_CACHE_DIR", str(root / "cache"))
    mp.setenv("TORCH_HOME", str(root / "torch"))
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            assert main(["evaluate", "--model", "gray", *SAMPLE, "--db", str(root / "r.sqlite")]) == 0
        checkpoints = checkpoints_dir()
    finally:
        mp.undo()
    return root, out.getvalue(), checkpoints


def test_evaluate_prints_one_line_per_missing_file(gray_run):
    _, out, checkpoints = gray_run
    lines = [l for l in out.splitlines() if l.startswith("unavailable:")]
    assert len(lines) == 3, lines  # lpips; fid, kid; top1, top5
    for name, metrics in FILES.items():
        spec = REGISTRY[name]
        (line,) = [l for l in lines if spec.filename in l]
        assert line.startswith(f"unavailable: {', '.join(metrics)}: weights file {spec.filename}")
        assert f"`vcbench weights download {name}`" in line
        assert f"put a copy of {spec.url} at {checkpoints / spec.filename}" in line
        assert line.count(spec.url) == 2  # once in the reason, once in the fix: no repeated sentences
    recorded = ResultsDB(gray_run[0] / "r.sqlite").runs()[0].unavailable
    assert recorded["fid"] == recorded["kid"] and recorded["top1"] == recorded["top5"]  # per metric in JSON/DB


def _short_forms() -> list[str]:
    return [f"{', '.join(ms)}: {missing_short(REGISTRY[n].filename)}" for n, ms in FILES.items()]


def test_leaderboard_note_latex_footnote_and_html_report_share_the_short_form(gray_run, tmp_path):
    root, _, _ = gray_run
    db = str(root / "r.sqlite")
    assert missing_short("vgg19-dcbb9e9d.pth") == ("vgg19-dcbb9e9d.pth missing (`vcbench weights download vgg19`, "
                                                   "or put a copy in $TORCH_HOME/hub/checkpoints/)")
    assert missing_short("clips shorter than 5 frames") is None
    rc, md, err = run_cli(["leaderboard", "--db", db, "--format", "json", "--resamples", "200"], ["leaderboard"])
    (note,) = [n for n in json.loads(md)["tables"][0]["notes"] if n.startswith("not measured")]
    assert note.startswith("not measured in any run here: " + "; ".join(_short_forms()))
    rc, tex, _ = run_cli(["leaderboard", "--db", db, "--format", "latex", "--resamples", "200"], ["leaderboard"])
    rc2, md, _ = run_cli(["leaderboard", "--db", db, "--format", "md", "--resamples", "200"], ["leaderboard"])
    assert rc == rc2 == 0
    page = build_report(ResultsDB(db, readonly=True), tmp_path / "report", n_resamples=200).read_text()
    for name, metrics in FILES.items():
        spec = REGISTRY[name]
        cmd = f"vcbench weights download {name}"
        assert rf"\texttt{{{cmd.replace('_', chr(92) + '_')}}}" in tex  # in the footnote, as code
        assert f"<code>{cmd}</code>" in page and "$TORCH_HOME/hub/checkpoints/" in page
        assert md.count(spec.filename.replace("_", r"\_")) == 1  # one entry per file, not per metric
        assert page.count(f"{spec.filename} missing") == 1
    assert "could not fetch" not in md + tex + page


def test_offline_error_is_one_line_with_command_url_and_place(torch_home, monkeypatch):
    monkeypatch.setenv("VCBENCH_OFFLINE", "1")
    spec = REGISTRY["inception_fid"]
    with pytest.raises(WeightsError) as err:
        resolve("inception_fid")
    msg = str(err.value)
    assert "\n" not in msg and spec.filename in msg and spec.url in msg
    assert "`vcbench weights download inception_fid`" in msg and str(checkpoints_dir() / spec.filename) in msg


def test_devc_hint_names_the_weights_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VCBENCH_CACHE_DIR", str(tmp_path / "cache"))
    rc = main(["evaluate", "--model", "devc", *SAMPLE, "--metrics", "psnr", "--db", str(tmp_path / "r.sqlite")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--weights PATH" in err and "--model-option weights" not in err
    assert "`vcbench weights download devc_zip`" in err and "colorization_checkpoint.zip" in err
