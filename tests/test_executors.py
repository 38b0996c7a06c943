"""Executors: the local process pool and Ray run the same shard function to the same bytes."""

from __future__ import annotations

import shutil

import pytest

from test_dataset_pipeline import digests, tiny_config
from vcbench.datasets.pipeline import RunOptions, build_dataset
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
