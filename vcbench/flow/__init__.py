"""Optical flow: estimators, Middlebury .flo I/O, the one backward warp, Lai's occlusion masks.

Attributes resolve lazily so that `import vcbench.flow` stays cheap (no OpenCV/torchvision/ptlflow).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "read_flo": "vcbench.flow.flo", "write_flo": "vcbench.flow.flo",
    "backward_warp": "vcbench.flow.warp",
    "occlusion_mask": "vcbench.flow.occlusion", "non_occlusion_mask": "vcbench.flow.occlusion",
    "FlowEstimator": "vcbench.flow.base",
    "get_estimator": "vcbench.flow.registry", "estimator_names": "vcbench.flow.registry",
    "resolve_flow": "vcbench.flow.registry",
    "FlowPairs": "vcbench.flow.pairs", "flow_pairs": "vcbench.flow.pairs",
    "PrecomputedFlow": "vcbench.flow.precomputed",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vcbench.flow' has no attribute {name!r}")
