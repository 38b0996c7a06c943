"""Where build-dataset's per-item work runs: a local process pool, or a Ray cluster.

Both run the same picklable top-level function on the same task objects and yield results as they
complete; the build writes each result under a name fixed by the task, so completion order never
changes the output. Each task is computed single-threaded (see `single_threaded`), so its bytes do
not depend on the worker's core count either.

Losing processes: local pool workers kill themselves the moment the main process exits (`die_with`,
a pidfd watch), so a killed build leaves no worker writing on (nor could one commit: see
`vcbench.lock.holder_alive`). A worker that dies under a running build (the OOM
killer) ends the build with one line, "worker lost while building shard N; rerun the same command
to resume" (`WorkerLost`); Ray retries a task whose worker or node was lost, and reports the same
line once its retries are spent.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

from vcbench.errors import VcbenchError

RESUME_HINT = "rerun the same command to resume"


class WorkerLost(VcbenchError):
    """A worker process (or Ray node) died while it ran a task: the build stops, a rerun resumes."""

    def __init__(self, what: str):
        super().__init__(f"worker lost while {what}; {RESUME_HINT}")


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


_started = None  # in a pool worker: the queue on which it says which task it runs


def die_with(pid: int) -> None:
    """Kill this process (SIGKILL) as soon as process `pid` exits, from a daemon thread that waits
    on a pidfd (Linux 5.3+; elsewhere it polls every 0.2 s). Pool workers are children of the fork
    server, which outlives the main process while workers hold its pipe, so the kernel's
    PR_SET_PDEATHSIG would not fire: they watch the main process itself."""
    import select
    import threading
    import time

    def suicide() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        suicide()
    except (AttributeError, OSError):
        def poll() -> None:
            while True:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    suicide()
                except PermissionError:
                    pass
                time.sleep(0.2)

        threading.Thread(target=poll, name="vcbench-die-with-main", daemon=True).start()
        return

    def wait() -> None:
        select.select([fd], [], [])
        suicide()

    threading.Thread(target=wait, name="vcbench-die-with-main", daemon=True).start()


def _worker_init(main_pid: int | None = None, started=None) -> None:
    """Pool worker start-up: one thread per library before any of them is imported; die with the
    main process; remember the task-report queue."""
    global _started
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    if main_pid is not None:
        die_with(main_pid)
    _started = started


def _tracked(fn: Callable[[Any], Any], key: int, task: Any) -> Any:
    """Run one task in a pool worker, first telling the main process which worker runs it."""
    if _started is not None:
        _started.put((os.getpid(), key))
    return fn(task)


# Modules the pool's fork server imports once, so each worker starts as a cheap fork of a process
# that has them loaded (and has run no thread pool yet, which is what makes forking it safe).
PRELOAD = ["vcbench.trainset.extract", "vcbench.trainset.stages", "torch", "scenedetect.detectors", "pyarrow.parquet"]


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
        self._started = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = _context()
            self._started = ctx.SimpleQueue()
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_worker_init,
                                             initargs=(os.getpid(), self._started))
        return self._pool

    def _lost(self, keys: dict, describe: Callable[[Any], str]) -> WorkerLost:
        """Which task the dead worker ran: the worker whose exit was not the pool's own SIGTERM to
        the survivors, matched to the task it last reported starting."""
        running: dict[int, int] = {}
        while self._started is not None and not self._started.empty():
            pid, key = self._started.get()
            running[pid] = key
        # The pool reports itself broken before its manager thread has terminated the survivors and
        # read every exit status; reading them here at the same time races it for the same pipe (the
        # loser sees 255). Wait for it to finish, then read the statuses it has settled.
        manager = getattr(self._pool, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(timeout=30)
        procs = dict(getattr(self._pool, "_processes", None) or {})
        dead = [pid for pid, p in procs.items() if p.exitcode is not None and p.exitcode != -signal.SIGTERM]
        keys_of = [running[pid] for pid in dead if pid in running and running[pid] in keys]
        if not keys_of:  # cannot tell which: name what was in flight
            keys_of = sorted(k for k in set(running.values()) if k in keys)
        if len(keys_of) == 1:
            return WorkerLost(describe(keys[keys_of[0]]))
        if keys_of:
            return WorkerLost("one of: " + ", ".join(describe(keys[k]) for k in keys_of[:3]))
        return WorkerLost("running a task")

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, gpu: bool = False,
            describe: Callable[[Any], str] | None = None) -> Iterator[Any]:
        """Yield `fn(task)` for every task, in completion order (`gpu` is ignored locally). A worker
        that dies raises `WorkerLost` naming its task (`describe(task)`, e.g. "building shard 3")."""
        tasks = list(tasks)
        if not tasks:
            return
        if self.workers == 1:
            for t in tasks:
                yield fn(t)
            return
        describe = describe or (lambda t: "running a task")
        pool = self._get_pool()
        keys = dict(enumerate(tasks))
        pending = {pool.submit(_tracked, fn, k, t) for k, t in keys.items()}
        # CPython's submit wakes the pool's manager thread before it spawns the worker for that task,
        # so the manager can go back to waiting without the newest worker's sentinel and miss that
        # worker's death until some other task finishes. Wake it once more now that all are spawned.
        wakeup = getattr(pool, "_executor_manager_thread_wakeup", None)
        if wakeup is not None:
            wakeup.wakeup()
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        raise self._lost(keys, describe) from None
                    yield result
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
                 max_in_flight: int | None = None, max_retries: int = 2):
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
        self.max_retries = max_retries

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, gpu: bool = False,
            describe: Callable[[Any], str] | None = None) -> Iterator[Any]:
        """Yield `fn(task)` in completion order. A task whose worker process or node is lost is
        retried by Ray (`max_retries`); after the last retry it raises `WorkerLost`. A retried task
        may overlap its first attempt on a node that is only unreachable: both write their own
        temporary folders and the commit keeps one (see `vcbench.trainset.shards`)."""
        ray = self._ray
        from ray import exceptions as rex

        lost_types = tuple(getattr(rex, n) for n in ("WorkerCrashedError", "NodeDiedError", "ObjectLostError",
                                                      "OwnerDiedError", "LocalRayletDiedError", "TaskUnschedulableError")
                           if hasattr(rex, n))
        describe = describe or (lambda t: "running a task")
        num_gpus = self.num_gpus_per_task if (gpu and self.cluster_gpus > 0) else 0
        remote = ray.remote(num_cpus=1, num_gpus=num_gpus, max_retries=self.max_retries)(fn)
        todo = list(tasks)
        todo.reverse()
        running: dict = {}
        try:
            while todo or running:
                while todo and len(running) < self.max_in_flight:
                    t = todo.pop()
                    running[remote.remote(t)] = t
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    task = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except lost_types:
                        raise WorkerLost(describe(task)) from None
                    yield result
        finally:
            for ref in running:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

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
