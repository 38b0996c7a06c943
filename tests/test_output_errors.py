"""Output-path mistakes (a file where a folder should be, no permission) end in one line, never a traceback."""

from __future__ import annotations

import errno
import os

import pytest

from report_fixtures import build_db
from vcbench.atomic import atomic_path, atomic_write_text, check_writable
from vcbench.cli import main
from vcbench.errors import VcbenchError


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("vcbench: error: ")
    return err


def test_parent_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    with pytest.raises(VcbenchError) as exc:
        atomic_write_text(blocker / "out.json", "{}")
    msg = str(exc.value)
    assert str(blocker / "out.json") in msg and "is a file, not a folder" in msg and "\n" not in msg
    assert blocker.read_text() == "keep"


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs /sys (a folder even root cannot write in)")
def test_permission_denied_names_the_reason():
    with pytest.raises(VcbenchError, match=r"/sys/out.json: cannot write: (Permission denied|Operation not permitted)"):
        atomic_write_text("/sys/out.json", "{}")


def test_errors_while_writing_and_renaming(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    with pytest.raises(VcbenchError, match="Input/output error"):
        with atomic_path(target) as tmp:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(tmp))
    with pytest.raises(VcbenchError, match="no space left on device"):
        with atomic_path(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    # An input file's error inside the block is not the output's fault: it keeps its type.
    with pytest.raises(FileNotFoundError):
        with atomic_path(target):
            open(tmp_path / "missing-input.txt")
    (tmp_path / "dir").mkdir()
    with pytest.raises(VcbenchError, match="cannot write"):
        atomic_write_text(tmp_path / "dir", "x")  # rename of a file onto a folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]  # no temporary file left


def test_check_writable_leaves_existing_files_alone(tmp_path):
    f = tmp_path / "results.json"
    f.write_text("old")
    check_writable(f)
    assert f.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    with pytest.raises(VcbenchError, match="is not a folder"):
        check_writable(f, folder=True)
    with pytest.raises(VcbenchError, match="is a folder"):
        check_writable(tmp_path)


def test_evaluate_checks_outputs_before_running_the_model(tmp_path, monkeypatch, capsys):
    from vcbench import evaluate as evaluate_mod

    def never(*a, **k):
        raise AssertionError("the model ran although the output path is unusable")

    monkeypatch.setattr(evaluate_mod, "evaluate", never)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    base = ["evaluate", "--model", "gray", "--dataset", "sample", "--db", str(tmp_path / "r.sqlite"), "--quiet"]
    assert main(base + ["--json", str(blocker / "out.json")]) == 2
    assert "is a file, not a folder" in _one_line_error(capsys)
    assert main(base + ["--save-frames", str(blocker)]) == 2
    assert "is not a folder" in _one_line_error(capsys)


def test_plot_and_leaderboard_outputs(tmp_path, capsys):
    db = build_db(tmp_path / "r.sqlite")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["plot", "--db", str(db.path), "--out", str(blocker), "--resamples", "100", "--quiet"]) == 2
    assert "is not a folder" in _one_line_error(capsys)
    assert main(["leaderboard", "--db", str(db.path), "--out", str(blocker / "x.md")]) == 2
    assert "is a file, not a folder" in _one_line_error(capsys)


def test_main_turns_stray_oserrors_into_one_line(monkeypatch, capsys):
    from vcbench.cli import models_cmd

    def denied(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/root/secret")

    monkeypatch.setattr(models_cmd, "run_list", denied, raising=False)
    assert main(["models", "list"]) == 2
    assert _one_line_error(capsys) == "vcbench: error: /root/secret: Permission denied"


def test_programming_errors_keep_their_traceback(monkeypatch):
    from vcbench.cli import models_cmd

    def bug(args):
        raise KeyError("bug")

    monkeypatch.setattr(models_cmd, "run_list", bug, raising=False)
    with pytest.raises(KeyError):
        main(["models", "list"])


def test_score_checks_its_json_path_before_scoring(tmp_path, monkeypatch, capsys):
    """A bad --json path must fail in a second, before the (long) scoring pass starts."""
    from vcbench.metrics import scorer as scorer_mod

    started = []
    monkeypatch.setattr(scorer_mod.Scorer, "score_dirs", lambda self, *a, **k: started.append(a))
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    code = main(["score", "--pred", str(tmp_path), "--gt", str(tmp_path), "--json", str(blocker / "out.json"),
                 "--quiet"])
    assert code == 2 and started == []
    assert "is a file, not a folder" in _one_line_error(capsys)
    assert blocker.read_text() == "keep"
