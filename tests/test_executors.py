"""Executors: the local process pool and Ray run the same shard function to the same bytes."""

from __future__ import annotations

import shutil

import pytest

from test_dataset_pipeline import digests, tiny_config
from vcbench.trainset.config import RunOptions
from vcbench.trainset.run import build_dataset
from vcbench.executors import LocalExecutor, make_executor
from vcbench.frames import sample_videos


def _square(x: int) -> int:
    return x * x


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    shutil.copyfile(sample_videos()["carphone_pristine"], d / "carphone.mp4")
    return d


def test_local_executor_runs_every_task_once():
    inline = sorted(LocalExecutor(1).map(_square, range(7)))
    ex = LocalExecutor(2)
    try:
        pooled = sorted(ex.map(_square, range(7)))
        again = sorted(ex.map(_square, [3, 4]))  # the pool is reused across phases
    finally:
        ex.close()
    assert inline == pooled == [i * i for i in range(7)] and again == [9, 16]


def _report_pid_then_wait(task: tuple[str, int]) -> int:
    """A task that says which worker runs it, then waits to be killed (or for the test to end)."""
    import os
    import time
    from pathlib import Path

    folder, key = task
    (Path(folder) / f"{key}.pid").write_text(str(os.getpid()))
    time.sleep(60)
    return key


@pytest.mark.parametrize("round_", range(3))
def test_local_lost_worker_names_exactly_its_task(tmp_path, round_):
    """Killing one of three busy workers names that worker's task only, not every task in flight
    (the pool can report itself broken before the dead worker's exit status has arrived)."""
    import os
    import signal
    import threading
    import time

    from vcbench.executors import WorkerLost

    victim_key = round_ % 3

    def kill_victim() -> None:
        pid_file = tmp_path / f"{victim_key}.pid"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all((tmp_path / f"{k}.pid").exists() for k in range(3)):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
                return
            time.sleep(0.005)

    ex = LocalExecutor(3)
    killer = threading.Thread(target=kill_victim)
    killer.start()
    finished: list[int] = []
    try:
        with pytest.raises(WorkerLost) as exc:
            for key in ex.map(_report_pid_then_wait, [(str(tmp_path), k) for k in range(3)],
                              describe=lambda t: f"building shard {t[1]}"):
                finished.append(key)
    finally:
        killer.join()
        ex.close()
    # The loss is seen at once, not after the survivors' tasks end (the newest worker's sentinel).
    assert finished == []
    assert str(exc.value) == f"worker lost while building shard {victim_key}; rerun the same command to resume."


def test_ray_and_local_builds_are_identical(videos, tmp_path):
    try:
        import ray
    except ImportError:
        pytest.skip("ray is not installed")
    try:
        # one declared (not real) GPU: Ray only books it, which is what placement is about
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - any start-up failure in a sandbox is a reason to skip
        pytest.skip(f"ray could not start here: {type(exc).__name__}: {exc}")
    try:
        ex = make_executor("ray")
        assert ex.cluster_gpus == 1

        def gpu_ids(_):  # local function: Ray ships it by value to the workers
            import ray as r

            return [str(g) for g in r.get_gpu_ids()]

        assert list(ex.map(gpu_ids, [0], gpu=True)) == [["0"]]  # GPU stage placed on the GPU
        assert list(ex.map(gpu_ids, [0], gpu=False)) == [[]]
        cfg = tiny_config(videos, clips=4)
        build_dataset(cfg, tmp_path / "ray", RunOptions(executor="ray", quiet=True))
    finally:
        ray.shutdown()
    build_dataset(cfg, tmp_path / "local", RunOptions(executor="local", workers=2, quiet=True))
    build_dataset(cfg, tmp_path / "inline", RunOptions(executor="local", workers=1, quiet=True))
    assert digests(tmp_path / "ray") == digests(tmp_path / "local") == digests(tmp_path / "inline")


def test_ray_lost_worker_is_retried_and_reported_in_one_line(videos, tmp_path):
    """A Ray worker killed part-way through a shard: Ray reruns the task and the build ends with the
    same bytes as a local one (the dead attempt's folder is swept, never committed); a task that
    keeps losing its worker ends in WorkerLost's one line."""
    import os
    import re
    import signal
    import threading
    import time

    try:
        import ray
    except ImportError:
        pytest.skip("ray is not installed")
    from test_dataset_pipeline import tiny_config
    from vcbench.executors import RayExecutor, WorkerLost

    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - any start-up failure in a sandbox is a reason to skip
        pytest.skip(f"ray could not start here: {type(exc).__name__}: {exc}")
    cfg = tiny_config(videos, clips=4)
    out = tmp_path / "ray"
    killed: list[int] = []

    def die_once(marker: str) -> str:  # local functions: Ray ships them by value to its workers
        """The first attempt loses its worker process (SIGKILL), as a lost node does."""
        from pathlib import Path

        if not Path(marker).exists():
            Path(marker).write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        return "retried"

    def always_die(_) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def kill_first_writer() -> None:
        lock_re = re.compile(r"^\.shard-\d{5}\.w(\d+)-[0-9a-f]{8}\.lock$")
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            names = os.listdir(out / "shards") if (out / "shards").is_dir() else []
            pids = [int(m[1]) for m in map(lock_re.match, names) if m]
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.002)

    try:
        ex = RayExecutor(max_retries=1)
        assert list(ex.map(die_once, [str(tmp_path / "marker")])) == ["retried"]
        with pytest.raises(WorkerLost) as exc:
            list(ex.map(always_die, [7], describe=lambda t: f"building shard {t}"))
        assert str(exc.value) == "worker lost while building shard 7; rerun the same command to resume."
        killer = threading.Thread(target=kill_first_writer)
        killer.start()
        build_dataset(cfg, out, RunOptions(executor="ray", quiet=True))
        killer.join()
    finally:
        ray.shutdown()
    assert killed, "no Ray worker was caught writing a shard"
    build_dataset(cfg, tmp_path / "local", RunOptions(executor="local", workers=1, quiet=True))
    assert digests(out) == digests(tmp_path / "local")
    assert not list(out.rglob(".*"))
