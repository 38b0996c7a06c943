"""Flow estimator registry (the GT flow pairs that warp error and flicker share: `flow.pairs`).

`get_estimator("dis" | "farneback" | "raft" | "flownet2" | PATH)`; heavy imports (torchvision's RAFT,
ptlflow) happen only when that estimator is asked for. Missing weights raise the resolver's
WeightsError (naming the file and `vcbench weights download ...`), so the scorer can report
warp_error/flicker as unavailable instead of failing the whole run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

import torch

from vcbench.errors import InputError
from vcbench.flow.base import FlowEstimator
from vcbench.flow.precomputed import PrecomputedFlow

AnyEstimator = Union[FlowEstimator, PrecomputedFlow]

DEFAULT_ESTIMATOR = "dis"
#: The field's estimator for warp error (Lai et al. used FlowNet2); needs its weights.
LEADERBOARD_ESTIMATOR = "flownet2"


def _dis(device, **kw) -> FlowEstimator:
    from vcbench.flow.classic import DISFlow

    return DISFlow(device)


def _farneback(device, **kw) -> FlowEstimator:
    from vcbench.flow.classic import FarnebackFlow

    return FarnebackFlow(device)


def _raft(device, **kw) -> FlowEstimator:
    from vcbench.flow.raft import RAFTFlow

    return RAFTFlow(device, **kw)


def _flownet2(device, **kw) -> FlowEstimator:
    from vcbench.flow.flownet2 import FlowNet2Flow

    return FlowNet2Flow(device, **kw)


ESTIMATORS: dict[str, tuple[Callable[..., FlowEstimator], str]] = {
    "dis": (_dis, "OpenCV DIS, preset MEDIUM, grey frames; no weights (offline default)"),
    "farneback": (_farneback, "OpenCV Farneback (0.5, 3, 15, 3, 5, 1.2, 0), grey frames; no weights"),
    "raft": (_raft, "torchvision RAFT-large (C_T_SKHT_V2), 12 updates; weights raft_large"),
    "flownet2": (_flownet2, "ptlflow FlowNet2 (things), padded to x64; weights flownet2_things"),
}


def estimator_names() -> list[str]:
    return list(ESTIMATORS)


def get_estimator(name_or_path: str | Path | AnyEstimator, device: str | torch.device = "cpu",
                  allow_unverified: bool = False, weights_path: str | Path | None = None) -> AnyEstimator:
    """An estimator by name, or `PrecomputedFlow` for a folder in Lai's layout (an instance passes through)."""
    if isinstance(name_or_path, (FlowEstimator, PrecomputedFlow)):
        return name_or_path
    key = str(name_or_path)
    if key.lower() in ESTIMATORS:
        factory = ESTIMATORS[key.lower()][0]
        kw = {}
        if key.lower() in ("raft", "flownet2"):
            kw = {"allow_unverified": allow_unverified, "weights_path": weights_path}
        return factory(device, **kw)
    path = Path(key).expanduser()
    if path.is_dir():
        return PrecomputedFlow(path, device)
    raise InputError(f"unknown flow estimator {key!r} (and no such folder)",
                     hint=f"use one of {', '.join(ESTIMATORS)} or a folder of precomputed flow (Lai's layout)")
