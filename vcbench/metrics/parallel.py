"""One small thread pool for the metrics' numpy/scipy work on the CPU.

scipy.ndimage's filters and numpy's array loops release the GIL, so per-plane work (SSIM's Gaussian
filters) runs on several cores from threads, without processes or copies. The pool has as many
threads as torch uses (`torch.get_num_threads()`, which a user or `--threads` may have lowered), so
the metrics never oversubscribe the cores torch's own kernels use; it is created once and reused.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def cpu_threads() -> int:
    """Threads the CPU metrics use: torch's intra-op thread count (at least 1)."""
    import torch

    return max(1, int(torch.get_num_threads()))


def thread_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`[fn(x) for x in items]`, spread over `cpu_threads()` threads (in order; inline with one thread)."""
    global _pool, _pool_size
    items = list(items)
    n = cpu_threads()
    if n == 1 or len(items) < 2:
        return [fn(x) for x in items]
    with _lock:
        if _pool is None or _pool_size != n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="vcbench-metrics")
            _pool_size = n
        pool = _pool
    return list(pool.map(fn, items))
