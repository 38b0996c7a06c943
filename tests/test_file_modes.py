"""Every file and folder vcbench writes gets the mode the user's umask gives (issue 10, point 12), not
mkstemp's 0600 / mkdtemp's 0700, which break shared cluster folders and web-served reports."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from report_fixtures import build_db
from vcbench.atomic import atomic_path, atomic_write_text, make_temp_dir

# One process runs the real commands one after another under a umask (as a user's shell would after
# `umask 027`), through the CLI's main so that torch is imported once. One umask is enough when it is
# 027: every wrong mode a writer could produce differs from what it gives (mkstemp's 0600 and
# mkdtemp's 0700, a fixed 0644/0755 or 0664/0775), where 022 passes a fixed 0644 and 002 a fixed 0664.
_CHILD = r"""
import os, sys
os.umask(int(sys.argv[1], 8))
from pathlib import Path
from vcbench.cli import main
out, db = Path(sys.argv[2]), sys.argv[3]
cache = str(out / "cache")
def run(*args):
    code = main(list(args))
    assert code == 0, (args, code)
run("evaluate", "--model", "gray", "--dataset", "sample", "--dataset-option", "frames=3", "--metrics", "psnr,flicker",
    "--save-frames", str(out / "frames"), "--db", str(out / "results.sqlite"), "--json", str(out / "eval.json"),
    "--cache-dir", cache, "--quiet")
gt = next((out / "cache").glob("benchmarks/*/clips"))
run("score", "--pred", str(out / "frames" / "gray"), "--gt", str(gt), "--metrics", "psnr", "--json",
    str(out / "score.json"), "--cache-dir", cache, "--quiet")
run("plot", "--db", db, "--out", str(out / "plots"), "--resamples", "1000", "--quiet")
run("report", "--db", db, "--out", str(out / "report"), "--resamples", "1000", "--quiet")
run("leaderboard", "--db", db, "--out", str(out / "leaderboard.md"))
run("build-dataset", "--source", "sample", "--out", str(out / "build"), "--clips", "2", "--workers", "1",
    "--flow", "dis", "--features", "weightfree", "--export-devc", str(out / "devc"), "--quiet")
"""


def _wrong_modes(root: Path, umask: int) -> list[str]:
    want_file, want_dir = 0o666 & ~umask, 0o777 & ~umask
    wrong = []
    for p in [root, *root.rglob("*")]:
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        want = want_dir if stat.S_ISDIR(st.st_mode) else want_file
        if stat.S_IMODE(st.st_mode) != want:
            wrong.append(f"{p.relative_to(root)} {oct(stat.S_IMODE(st.st_mode))} (want {oct(want)})")
    return wrong


def test_real_commands_write_with_the_umask_modes(tmp_path):
    umask = 0o027
    db = build_db(tmp_path / "reports.sqlite")
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    os.chmod(out, 0o777 & ~umask)
    proc = subprocess.run([sys.executable, "-c", _CHILD, oct(umask), str(out), str(db.path)], capture_output=True,
                          text=True, timeout=480, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {p.relative_to(out).as_posix() for p in out.rglob("*")}
    for expected in ("eval.json", "score.json", "leaderboard.md", "report/index.html", "build/build.json",
                     "build/manifest.parquet", "results.sqlite"):
        assert expected in names, sorted(names)[:50]
    assert any(n.startswith("frames/gray/") and n.endswith(".png") for n in names)
    assert any(n.startswith("plots/") and n.endswith(".png") for n in names)
    assert any(n.startswith("devc/") and n.endswith(".flo") for n in names)
    assert any(n.startswith("cache/") and n.endswith(".npy") for n in names)  # the GT cache
    assert _wrong_modes(out, umask) == []


def test_atomic_helpers_follow_the_umask_of_the_moment(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"y")
        folder = make_temp_dir(tmp_path / "c")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o640
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750 and folder.name.startswith(".c.")
