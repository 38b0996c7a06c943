"""Where build-dataset's per-item work runs: a local process pool, or a Ray cluster.

Both run the same picklable top-level function on the same task objects and yield results as they
complete; the build writes each result under a name fixed by the task, so completion order never
changes the output. Each task is computed single-threaded (see `single_threaded`), so its bytes do
not depend on the worker's core count either.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator

from vcbench.errors import VcbenchError


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run a block with OpenCV (and torch, when loaded) on one thread, restored afterwards: workers
    already give the parallelism, and one thread keeps float reductions in a fixed order. Torch is
    not imported here (extraction does not need it); code that uses torch imports it first."""
    import sys

    import cv2

    prev_cv = cv2.getNumThreads()
    cv2.setNumThreads(1)
    torch = sys.modules.get("torch")
    prev_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(prev_cv)
        if torch is not None:
            torch.set_num_threads(prev_torch)


def _worker_init() -> None:
    """Pool worker start-up: one thread per library before any of them is imported."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


# Modules the pool's fork server imports once, so each worker starts as a cheap fork of a process
# that has them loaded (and has run no thread pool yet, which is what makes forking it safe).
PRELOAD = ["vcbench.datasets.pipeline", "vcbench.datasets.stages", "torch", "scenedetect.detectors", "pyarrow.parquet"]


def _context():
    """"forkserver" with the preloads where the platform has it; "spawn" otherwise. Never plain
    "fork": the calling process may already run torch/OpenMP threads."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")


class LocalExecutor:
    """A `concurrent.futures` process pool (fork-server workers), kept for the executor's lifetime (so
    the extraction and shard phases share warm workers); `workers=1` runs in this process."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, int(workers or os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=_context(),
                                             initializer=_worker_init)
        return self._pool

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, gpu: bool = False) -> Iterator[Any]:
        """Yield `fn(task)` for every task, in completion order (`gpu` is ignored locally)."""
        tasks = list(tasks)
        if not tasks:
            return
        if self.workers == 1:
            for t in tasks:
                yield fn(t)
            return
        pool = self._get_pool()
        pending = {pool.submit(fn, t) for t in tasks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Runs tasks as Ray remote functions, on a cluster (`address`) or a local Ray instance.

    Tasks flagged `gpu=True` (flow, learned descriptors) ask for `num_gpus_per_task` GPUs when the
    cluster has any, so Ray places them on GPU workers; otherwise they run on CPUs.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_gpus_per_task: float = 1.0, num_cpus: int | None = None,
                 max_in_flight: int | None = None):
        try:
            import ray
        except ImportError as exc:
            raise VcbenchError("--executor ray needs the ray package", hint="pip install 'ray==2.60.0' or use --executor local") from exc
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            elif num_cpus:
                kwargs["num_cpus"] = num_cpus
            try:
                ray.init(**kwargs)
            except Exception as exc:  # noqa: BLE001 - ray raises many types; the user needs one line
                where = address or "a local Ray instance"
                raise VcbenchError(f"could not start or reach {where} ({type(exc).__name__}: {exc})".replace("\n", " "),
                                   hint="check --address (ray://HOST:10001 or HOST:6379) or use --executor local") from exc
            self._owns = True
        self.cluster_gpus = float(ray.cluster_resources().get("GPU", 0.0))
        self.num_gpus_per_task = float(num_gpus_per_task)
        self.max_in_flight = max_in_flight or max(2, int(ray.cluster_resources().get("CPU", 2)) * 2)

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, gpu: bool = False) -> Iterator[Any]:
        ray = self._ray
        num_gpus = self.num_gpus_per_task if (gpu and self.cluster_gpus > 0) else 0
        remote = ray.remote(num_cpus=1, num_gpus=num_gpus, max_retries=2)(fn)
        todo = list(tasks)
        todo.reverse()
        running: list = []
        while todo or running:
            while todo and len(running) < self.max_in_flight:
                running.append(remote.remote(todo.pop()))
            done, running = ray.wait(running, num_returns=1)
            for ref in done:
                yield ray.get(ref)

    def close(self) -> None:
        if self._owns:
            self._ray.shutdown()
            self._owns = False


def make_executor(kind: str, *, workers: int | None = None, address: str | None = None,
                  num_gpus_per_task: float = 1.0):
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(address, num_gpus_per_task=num_gpus_per_task, num_cpus=workers)
    raise VcbenchError(f"unknown executor {kind!r}", hint="choose local or ray")
