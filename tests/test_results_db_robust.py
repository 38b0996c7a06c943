"""Results database robustness (issue 10, point 5): a read-only or unwritable database is refused
before any model runs; two `vcbench evaluate` processes with the same run identity do the work once
(the second waits for the first, or takes over a dead one's claim); a database whose columns differ
from this version's is one line, never a TypeError traceback."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from report_fixtures import run_cli, synthetic_run
from vcbench.errors import VcbenchError
from vcbench.reports.db import CLAIM_STALE_AFTER, ResultsDB

SAMPLE = ["--dataset", "sample", "--dataset-option", "frames=6", "--dataset-option", "width=64",
          "--dataset-option", "clips=carphone", "--metrics", "psnr", "--flow", "dis", "--device", "cpu", "--quiet"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["VCBENCH_CACHE_DIR"] = str(tmp_path / "cache")
    env["VCBENCH_TEST_GATE"] = str(tmp_path / "gate")
    env.pop("VCBENCH_DB", None)
    return env


#: `python -m vcbench` with tests/gated_model.py's `gated` model registered (it holds its run open until
#: the gate file exists, so a test can act while a real process holds its claim).
_LAUNCH = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import vcbench.baselines.registry as r; "
           "r.MODELS['gated'] = 'gated_model:Gated'; from vcbench.cli import main; sys.exit(main(sys.argv[1:]))")


def _start(tmp_path: Path, db: Path, *extra: str, model: str = "welsh", prefix: tuple[str, ...] = (),
           gate: Path | None = None) -> subprocess.Popen:
    """A real `vcbench evaluate`; with `gate`, the gated model, held until `gate` exists."""
    if gate is None:
        argv = [*prefix, sys.executable, "-m", "vcbench", "evaluate", "--model", model, *SAMPLE, "--db", str(db), *extra]
    else:
        argv = [*prefix, sys.executable, "-c", _LAUNCH, str(Path(__file__).parent), "evaluate", "--model", "gated",
                *SAMPLE, "--db", str(db), *extra]
    return subprocess.Popen(argv, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_claim(db: Path, proc: subprocess.Popen, timeout: float = 240.0) -> tuple:
    """The claims row once the process has taken it (the model is about to run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if db.exists():
            try:
                rows = _claims(db)
                if rows:
                    return rows[0]
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError("no claim appeared")


class _Lines:
    """Collects a pipe's lines in a thread; `wait_for(text)` blocks until a line contains it."""

    def __init__(self, pipe) -> None:
        self.lines: list[str] = []
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            with self._cv:
                self.lines.append(line)
                self._cv.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: any(text in l for l in self.lines), timeout=timeout)

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def _sql(db: Path, *statements: str, params: tuple = ()) -> list[tuple]:
    """Run statements on a connection that is closed afterwards (rows of the last one)."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as c, c:
        rows: list[tuple] = []
        for stmt in statements:
            rows = c.execute(stmt, params if stmt is statements[-1] else ()).fetchall()
        return rows


def _claims(db: Path) -> list[tuple]:
    return _sql(db, "SELECT run_key, pid FROM claims")


def test_second_run_with_the_same_identity_waits_and_reuses(tmp_path):
    """Two real `vcbench evaluate` processes: the first is frozen while it holds the claim, so the
    second certainly finds it running; it waits, then reuses the first's result, never running the model."""
    db, gate = tmp_path / "r.sqlite", tmp_path / "gate"
    first = _start(tmp_path, db, gate=gate)
    key, pid = _wait_for_claim(db, first)
    assert pid == first.pid
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = _start(tmp_path, db, gate=gate)
        err = _Lines(second.stderr)
        assert err.wait_for("waiting for its result", timeout=240), err.lines
        assert f"pid {first.pid} on {socket.gethostname()}" in "".join(err.lines)
        assert second.poll() is None  # still waiting: it did not start the model itself
    finally:
        os.kill(first.pid, signal.SIGCONT)
        gate.touch()
    out1, err1 = first.communicate(timeout=300)
    out2 = second.stdout.read()
    assert second.wait(timeout=300) == 0 and first.returncode == 0, (err1, err.text())
    assert "recorded as run 1" in out1 and "reused run 1" in out2, (out1, out2)
    assert "reusing its result (run 1)" in err.text()
    runs = ResultsDB(db).runs()
    assert len(runs) == 1 and runs[0].run_key == key and _claims(db) == []


def test_a_dead_holders_claim_is_taken_over(tmp_path):
    """The holder is killed -9 (the whole process group) while it holds the claim: a rerun takes over."""
    db, gate = tmp_path / "r.sqlite", tmp_path / "gate"
    first = _start(tmp_path, db, gate=gate)
    _, pid = _wait_for_claim(db, first)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    assert _claims(db) and _claims(db)[0][1] == pid  # the dead process's claim is still there
    gate.touch()
    second = _start(tmp_path, db, gate=gate)
    out, err = second.communicate(timeout=400)
    assert second.returncode == 0, err
    assert f"took over a stale claim on this run (pid {pid}" in err and "no longer running" in err
    assert "recorded as run 1" in out and len(ResultsDB(db).runs()) == 1 and _claims(db) == []


def test_claims_held_stale_and_released(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        got = db.claim("k1")
        assert got.state == "acquired" and got.token
        _sql(db.path, "UPDATE claims SET pid = ? WHERE run_key = 'k1'", params=(sleeper.pid,))  # a live other holder
        held = db.claim("k1")
        assert held.state == "held" and held.holder.pid == sleeper.pid
        assert not db.refresh_claim("k1", "not-our-token")
        # another host's holder that stopped refreshing is stale after CLAIM_STALE_AFTER
        _sql(db.path, "UPDATE claims SET host = 'elsewhere', heartbeat = ? WHERE run_key = 'k1'",
             params=(time.time() - CLAIM_STALE_AFTER - 5,))
        again = db.claim("k1")
        assert again.state == "acquired" and "last refreshed" in again.took_over
        # recording with the claim releases it in the same transaction; a recorded run is reused
        run = synthetic_run("gray", seed=1)
        token = db.claim(run.run_key).token
        db.record(run, claim=token)
        assert db.claim(run.run_key).state == "recorded" and _claims(db.path) == [("k1", os.getpid())]
        with db.holding_claim("k2", db.claim("k2").token, interval=0.05):
            time.sleep(0.2)
            assert [k for k, _ in _claims(db.path)] == ["k1", "k2"]
        assert [k for k, _ in _claims(db.path)] == ["k1"]  # released on exit
    finally:
        sleeper.kill()
        sleeper.wait()


def _drop_privileges() -> tuple[str, ...]:
    """A command prefix under which file permissions hold (root ignores them unless its DAC capabilities
    are dropped); skip where that cannot be arranged."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file permissions cannot be enforced")
    caps = "-dac_override,-dac_read_search"
    return ("setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}")


@pytest.mark.parametrize("case", ["file-read-only", "folder-read-only", "new-file-in-read-only-folder"])
def test_unwritable_database_is_refused_before_the_model_runs(tmp_path, case):
    prefix = _drop_privileges()
    folder = tmp_path / "dbdir"
    folder.mkdir()
    db = folder / "r.sqlite"
    if case != "new-file-in-read-only-folder":
        ResultsDB(db).record(synthetic_run("gray", seed=1))
        # every connection closed: SQLite removed its -wal and -shm files, which a folder that nobody may
        # write to cannot recreate (with them present and writable, the database would be writable)
        assert sorted(p.name for p in folder.iterdir()) == ["r.sqlite"]
    if case == "file-read-only":
        db.chmod(0o444)
    else:
        folder.chmod(0o555)
    frames = tmp_path / "frames"
    try:
        t0 = time.monotonic()
        proc = _start(tmp_path, db, "--save-frames", str(frames), model="reinhard", prefix=prefix)
        out, err = proc.communicate(timeout=300)
        lines = err.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith(f"vcbench: error: {db}") and ("read-only" in err or "cannot open" in err), err
        assert not (frames / "reinhard").exists()  # the model never ran
        if case != "new-file-in-read-only-folder":
            # reading still works: the report commands open the database read-only
            lb = subprocess.run([*prefix, sys.executable, "-m", "vcbench", "leaderboard", "--db", str(db),
                                 "--format", "csv", "--resamples", "200"], capture_output=True, text=True,
                                env=_env(tmp_path), timeout=300)
            assert lb.returncode == 0 and "gray" in lb.stdout, lb.stderr
        assert time.monotonic() - t0 < 300
    finally:
        folder.chmod(stat.S_IRWXU)
        db.chmod(0o644) if db.exists() else None


def test_check_writable_is_a_real_write(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    db.check_writable()
    assert _sql(db.path, "SELECT value FROM meta WHERE key = 'write_probe'") == []  # rolled back
    with pytest.raises(VcbenchError, match="opened read-only"):
        ResultsDB(db.path, readonly=True).check_writable()


def _alter(path: Path, *sql: str) -> None:
    if sql:
        _sql(path, *sql)


def test_columns_that_differ_are_one_line(tmp_path):
    base = tmp_path / "base.sqlite"
    ResultsDB(base).record(synthetic_run("gray", seed=1))
    cases = {
        "missing": ("ALTER TABLE runs DROP COLUMN fps",),
        "renamed": ("ALTER TABLE clip_metrics RENAME COLUMN clip TO clip_name",),
        "required-extra": (),
        "bad-version": ("UPDATE meta SET value = 'one' WHERE key = 'schema_version'",),
    }
    for name, sql in cases.items():
        path = tmp_path / f"{name}.sqlite"
        shutil.copy(base, path)
        _alter(path, *sql)
        if name == "required-extra":  # a NOT NULL column without default, which this version cannot fill
            cols = ", ".join(f"{r[1]} {r[2]}" for r in _sql(path, "ALTER TABLE runs RENAME TO r_old",
                                                                "PRAGMA table_info(r_old)"))
            _sql(path, f"CREATE TABLE runs ({cols}, owner TEXT NOT NULL)", "DROP TABLE r_old")
        for readonly in (False, True):
            with pytest.raises(VcbenchError) as exc:
                ResultsDB(path, readonly=readonly)
            msg = str(exc.value)
            assert "\n" not in msg and str(path) in msg and ("--db" in msg), msg
        rc, out, err = run_cli(["leaderboard", "--db", str(path)], ["leaderboard"])
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "runs lacks column(s) fps" in str(pytest.raises(VcbenchError, ResultsDB, tmp_path / "missing.sqlite").value)
    assert "clip_metrics lacks column(s) clip" in str(pytest.raises(VcbenchError, ResultsDB,
                                                                   tmp_path / "renamed.sqlite").value)
    assert "unknown required column(s) owner" in str(pytest.raises(VcbenchError, ResultsDB,
                                                                  tmp_path / "required-extra.sqlite").value)


def test_an_extra_nullable_column_is_tolerated(tmp_path):
    """What used to be a TypeError from RunRecord(**row): a column this version does not know."""
    path = tmp_path / "r.sqlite"
    ResultsDB(path).record(synthetic_run("gray", seed=1))
    _alter(path, "ALTER TABLE runs ADD COLUMN comment TEXT")
    db = ResultsDB(path)
    assert [r.model for r in db.runs()] == ["gray"]
    db.record(synthetic_run("reinhard", seed=3))
    rc, out, err = run_cli(["leaderboard", "--db", str(path), "--format", "csv", "--resamples", "200"], ["leaderboard"])
    assert rc == 0 and "reinhard" in out and "gray" in out, err
