"""Metrics of protocol vcbench-v1, the streaming scorer and the suite object for training loops.

Imports are lazy (PEP 562), so `import vcbench.metrics` stays cheap and pulls in no network code
until a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Metric": "vcbench.metrics.base",
    "FrameContext": "vcbench.metrics.context",
    "MetricSuite": "vcbench.metrics.suite",
    "ScoreResult": "vcbench.metrics.result",
    "Scorer": "vcbench.metrics.scorer",
    "score_dirs": "vcbench.metrics.scorer",
    "pair_clips": "vcbench.metrics.pairing",
    "GTCache": "vcbench.metrics.gt_cache",
    "create_metric": "vcbench.metrics.registry",
    "metric_names": "vcbench.metrics.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vcbench.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
