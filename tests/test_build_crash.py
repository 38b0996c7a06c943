"""build-dataset under the failures of real life: the main process killed with its workers alive,
the whole process group killed, one pool worker killed (as the OOM killer does), two builds into one
folder at once. Each rerun of the same command must give exactly the bytes of an uninterrupted build.

The build is the documented `--source sample` command, made small (8 one-clip shards of 4 frames
at 32x64, two workers) so the shard phase runs long enough to be killed part-way.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_dataset_pipeline import digests
from vcbench.lock import read_holder

BUILD = ["--source", "sample", "--clips", "8", "--size", "32x64", "--clip-length", "4", "--shard-size", "1",
         "--flow", "farneback", "--workers", "2", "--quiet"]
LOCK_RE = re.compile(r"^\.shard-(\d{5})\.w(\d+)-[0-9a-f]{8}\.lock$")


def build_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vcbench", "build-dataset", "--out", str(out), *BUILD, *extra]


def start_build(out: Path, *extra: str) -> subprocess.Popen:
    """The build in a subprocess that leads its own process group (as a shell job or a batch job)."""
    return subprocess.Popen(build_cmd(out, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def rerun(out: Path, capsys, *extra: str) -> tuple[int, str]:
    """The same command again, at once, in this process (whose pool fork server is warm after the
    first build, so a rerun costs about what its shards cost); returns (exit code, stderr)."""
    from vcbench.cli import main

    capsys.readouterr()
    rc = main(["build-dataset", "--out", str(out), *BUILD, *extra])
    return rc, capsys.readouterr().err


def shard_writers(out: Path) -> dict[int, int]:
    """{pid: shard} of the workers that are writing a shard now (from their private lock files)."""
    shards = out / "shards"
    names = os.listdir(shards) if shards.is_dir() else []
    return {int(m[2]): int(m[1]) for m in map(LOCK_RE.match, names) if m}


def wait_for_shard_work(proc: subprocess.Popen, out: Path, n_writers: int = 1) -> dict[int, int]:
    """Poll until `n_writers` workers are building shards and at least one shard is committed."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the build ended (rc {proc.returncode}) before it could be killed: {proc.stderr.read()}")
        writers = shard_writers(out)
        if len(writers) >= n_writers and any((out / "shards").glob("shard-*.stats.json")):
            return writers
        time.sleep(0.002)
    pytest.fail("the build never reached its shard phase")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_dead(pids, timeout: float = 10.0) -> list[int]:
    """The pids still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.01)
    return [p for p in pids if alive(p)]


def group_members(pgid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.getpgid(int(d)) == pgid:
                    out.append(int(d))
            except (ProcessLookupError, PermissionError):
                pass
    return out


def stop(proc: subprocess.Popen) -> None:
    """Whatever a test left running: its whole group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    wait_dead(group_members(proc.pid))


def assert_clean(out: Path) -> None:
    """No lock, no temporary folder or file of any writer left anywhere in the build."""
    hidden = [str(p.relative_to(out)) for p in out.rglob(".*")]
    assert hidden == [], hidden


def rerun_matches(out: Path, reference: dict[str, str], capsys) -> None:
    rc, err = rerun(out, capsys)
    assert rc == 0, err
    assert_clean(out)
    assert digests(out) == reference


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    """The digests of an uninterrupted build of the same command."""
    from vcbench.cli import main

    out = tmp_path_factory.mktemp("ref") / "build"
    assert main(["build-dataset", "--out", str(out), *BUILD]) == 0
    assert_clean(out)
    return digests(out)


def test_kill_main_only_workers_die_and_rerun_is_byte_identical(reference, tmp_path, capsys):
    out = tmp_path / "b"
    proc = start_build(out)
    try:
        writers = wait_for_shard_work(proc, out)
        workers = [p for p in group_members(proc.pid) if p != proc.pid]
        os.kill(proc.pid, signal.SIGKILL)  # the main process only: its workers are still running
        proc.wait()
        t_kill = time.time()
        assert set(writers) <= set(workers)
        # The workers die with their parent at once, instead of writing on into the folder.
        assert wait_dead(writers, timeout=5.0) == []
        assert wait_dead(workers, timeout=10.0) == []
        committed = {p.name: p.stat().st_mtime for p in (out / "shards").glob("*.stats.json")}
        assert all(t <= t_kill + 0.5 for t in committed.values())  # nothing committed after the kill
        assert not (out / "manifest.parquet").exists()
        assert read_holder(out)["pid"] == proc.pid  # the dead build's lock is still on disk
    finally:
        stop(proc)
    rerun_matches(out, reference, capsys)  # at once: the stale lock is taken over, dead writers' folders removed


def test_kill_process_group_then_rerun_is_byte_identical(reference, tmp_path, capsys):
    out = tmp_path / "g"
    proc = start_build(out)
    try:
        wait_for_shard_work(proc, out)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert any(p.name.endswith(".tmp") for p in (out / "shards").iterdir())  # partial shards on disk
    finally:
        stop(proc)
    rerun_matches(out, reference, capsys)


def test_lost_worker_is_one_line_and_rerun_resumes(reference, tmp_path, capsys):
    out = tmp_path / "w"
    proc = start_build(out)
    try:
        writers = wait_for_shard_work(proc, out)
        victim = next(iter(writers))
        os.kill(victim, signal.SIGKILL)  # one pool worker, as the OOM killer does
        _, err = proc.communicate(timeout=120)
    finally:
        stop(proc)
    lines = err.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and "Traceback" not in err, err
    m = re.fullmatch(r"vcbench: error: worker lost while building shard (\d+); rerun the same command to resume\.",
                     lines[0])
    assert m, lines[0]
    # The shard that worker was writing when it died (its private lock file is still there).
    assert int(m[1]) == shard_writers(out).get(victim, int(m[1]))
    rerun_matches(out, reference, capsys)


def wait_for_lock(proc: subprocess.Popen, out: Path) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        holder = read_holder(out)
        if holder.get("pid") == proc.pid:
            return holder
        time.sleep(0.005)
    pytest.fail("the first build never took its lock")


def test_second_build_into_the_same_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "c"
    proc = start_build(out)
    try:
        wait_for_lock(proc, out)
        rc, err = rerun(out, capsys)
        holder = json.loads((out / ".vcbench.lock").read_text())
        assert proc.poll() is None  # the first build is still running, undisturbed
    finally:
        stop(proc)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert f"pid {proc.pid} on host {socket.gethostname()}" in lines[0] and str(out) in lines[0]
    assert "another vcbench build is writing to this folder" in lines[0]
    assert holder["pid"] == proc.pid  # the refused build did not touch the holder's lock file


# ------------------------------------------------------------------ the commit guard, unit by unit
_HOLD = """
import sys, time
from vcbench.lock import FolderLock, PrivateDir
lock = FolderLock(sys.argv[1], "build").acquire()
d = PrivateDir(sys.argv[1], "shard-00000")
print(lock.token, d.path, flush=True)
time.sleep(600)
"""


def _holder(folder: Path) -> tuple[subprocess.Popen, str, Path]:
    """A process that holds `folder`'s build lock and one private folder in it, until killed."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    token, private = proc.stdout.readline().split()
    return proc, token, Path(private)


def _writer(out: Path, token: str | None):
    from vcbench.trainset.manifest import write_manifest
    from vcbench.trainset.shards import ShardWriter, sha256_bytes

    w = ShardWriter(out, 0, token)
    w._put("clip/frames/00000.jpg", b"frame bytes")
    write_manifest([], w.manifest_path())
    return w, sha256_bytes(w.manifest_path().read_bytes())


def test_writers_of_a_dead_or_replaced_build_cannot_commit(tmp_path):
    from vcbench.lock import FolderLock, OwnerLost, holder_alive, sweep_private_dirs

    out = tmp_path / "o"
    proc, token, private = _holder(out)
    try:
        assert holder_alive(out, token) and not holder_alive(out, "another token")
        assert sweep_private_dirs(out) == [] and private.is_dir()  # a live writer's folder stays
        w, sha = _writer(out, token)
    finally:
        proc.kill()
        proc.wait()
    assert not holder_alive(out, token)  # the kernel dropped the dead holder's flock
    with pytest.raises(OwnerLost, match="no longer holds the folder's lock"):
        w.commit(sha)
    assert not (out / "shards" / "shard-00000").exists()
    assert sweep_private_dirs(out) == [private.name] and not private.exists()  # its writer is dead now
    with FolderLock(out, "build") as lock:  # the stale lock is taken over; the old token stays invalid
        assert not holder_alive(out, token) and holder_alive(out, lock.token)
        w.abort()
        w, sha = _writer(out, lock.token)
        w.commit(sha)
    assert (out / "shards" / "shard-00000" / "clip" / "frames" / "00000.jpg").read_bytes() == b"frame bytes"
    assert not (out / ".vcbench.lock").exists()


def test_shard_is_not_committed_when_a_file_does_not_match_its_checksum(tmp_path):
    from vcbench.errors import VcbenchError

    w, sha = _writer(tmp_path, None)
    (w.tmp / "clip" / "frames" / "00000.jpg").write_bytes(b"other bytes")
    with pytest.raises(VcbenchError, match="failed its check before commit.*checksum mismatch: clip/frames/00000.jpg"):
        w.commit(sha)
    (w.tmp / "clip" / "frames" / "00000.jpg").unlink()
    with pytest.raises(VcbenchError, match="missing: clip/frames/00000.jpg"):
        w.commit(sha)
    assert not (tmp_path / "shards" / "shard-00000").exists()


# ------------------------------------------------------------- the sample benchmark's cache folder
_SAMPLE_KILLED = """
import os, signal, sys
import vcbench.benchmarks.sample as b
real = b.write_frames
def dying(folder, frames, *a, **k):
    real(folder, frames, *a, **k)
    os.kill(os.getpid(), signal.SIGKILL)  # killed after the first clip's frames are written
b.write_frames = dying
b.prepare_sample(sys.argv[1], frames=3, width=64)
"""


def test_sample_folder_of_a_killed_run_is_removed_by_the_next(tmp_path):
    """prepare_sample (evaluate/score on the bundled sample) killed part-way: its `.sample-*` folder
    is removed by the next run, which builds the sample; a live run's folder is left alone."""
    from vcbench.benchmarks.sample import prepare_sample
    from vcbench.lock import PrivateDir

    cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-c", _SAMPLE_KILLED, str(cache)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    bench = cache / "benchmarks"
    stale = sorted(p.name for p in bench.iterdir() if p.name.startswith(".sample-"))
    assert [n.rsplit(".", 1)[1] for n in stale] == ["lock", "tmp"]  # the dead run's folder and its mark
    live = PrivateDir(bench, "sample-v1-in-progress")  # another run, still writing
    root = prepare_sample(cache, frames=3, width=64)
    assert sorted(p.name for p in bench.iterdir() if p.name.startswith(".")) == sorted([live.lock_path.name,
                                                                                         live.path.name])
    live.discard()
    assert [p.name for p in bench.iterdir()] == [root.name]
    assert sorted(p.name for p in (root / "clips").iterdir()) and len(list(root.glob("clips/*/*.png"))) % 3 == 0
