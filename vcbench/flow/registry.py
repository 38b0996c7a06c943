"""Flow estimator registry (the GT flow pairs that warp error and flicker share: `flow.pairs`).

`get_estimator("dis" | "farneback" | "raft" | "flownet2" | "auto" | PATH)`; each estimator's module
(torchvision's RAFT, ptlflow) is imported only when that estimator is asked for. Missing weights raise
the resolver's WeightsError (naming the file and `vcbench weights download ...`), so the scorer can
report warp_error/flicker as unavailable instead of failing the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vcbench import weights
from vcbench.errors import InputError, VcbenchError
from vcbench.flow.base import FlowEstimator
from vcbench.flow.flownet2 import ptlflow_installed
from vcbench.flow.precomputed import PrecomputedFlow
from vcbench.registry import Registry, Spec

DEFAULT_ESTIMATOR = "dis"
#: The field's estimator for warp error (Lai et al. used FlowNet2); needs its weights.
LEADERBOARD_ESTIMATOR = "flownet2"


@dataclass(frozen=True)
class EstimatorSpec(Spec):
    """One estimator: what `flow list`-style listings print, the weight files it loads
    (vcbench.weights registry names; empty = no weights, so it takes no weight options), and whether
    a build task running it should ask the cluster for a GPU."""

    description: str = ""
    weights: tuple[str, ...] = ()
    needs_gpu: bool = False


def _unknown(name: str, names: list[str]) -> VcbenchError:
    return InputError(f"unknown flow estimator {name!r} (and no such folder)",
                      hint=f"use one of {', '.join(names)} or a folder of precomputed flow (Lai's layout)")


ESTIMATORS: Registry[EstimatorSpec] = Registry("flow estimator", EstimatorSpec, base=FlowEstimator, unknown=_unknown)
ESTIMATORS.add(EstimatorSpec("dis", "vcbench.flow.classic:DISFlow",
                             description="OpenCV DIS, preset MEDIUM, grey frames; no weights (offline default)"))
ESTIMATORS.add(EstimatorSpec("farneback", "vcbench.flow.classic:FarnebackFlow",
                             description="OpenCV Farneback (0.5, 3, 15, 3, 5, 1.2, 0), grey frames; no weights"))
ESTIMATORS.add(EstimatorSpec("raft", "vcbench.flow.raft:RAFTFlow",
                             description="torchvision RAFT-large (C_T_SKHT_V2), 12 updates; weights raft_large",
                             weights=("raft_large",), needs_gpu=True))
ESTIMATORS.add(EstimatorSpec("flownet2", "vcbench.flow.flownet2:FlowNet2Flow",
                             description="ptlflow FlowNet2 (things), padded to x64; weights flownet2_things",
                             weights=("flownet2_things",), needs_gpu=True))


def estimator_names() -> list[str]:
    return ESTIMATORS.names()


def resolve_flow(name: str) -> str:
    """`auto` -> the leaderboard estimator (flownet2) when its weight file is in the cache and ptlflow
    (an optional extra) is installed, else the offline default (dis); any other name unchanged (an
    explicit choice is honoured, and fails clearly if it cannot run)."""
    if name != "auto":
        return name
    if not ptlflow_installed():
        return DEFAULT_ESTIMATOR
    try:
        state = weights.status(ESTIMATORS.spec(LEADERBOARD_ESTIMATOR).weights[0])[0]
    except Exception:  # noqa: BLE001 - an unknown or unreadable entry simply means "not present"
        state = "missing"
    return LEADERBOARD_ESTIMATOR if state in ("verified", "unchecked") else DEFAULT_ESTIMATOR


def get_estimator(name_or_path: str | Path | FlowEstimator, device: str | torch.device = "cpu",
                  allow_unverified: bool = False, weights_path: str | Path | None = None) -> FlowEstimator:
    """An estimator by name (`auto` resolved by `resolve_flow`), or `PrecomputedFlow` for a folder in
    Lai's layout; an estimator instance (vcbench's or a user's own subclass) passes through."""
    if isinstance(name_or_path, FlowEstimator):
        return name_or_path
    key = resolve_flow(str(name_or_path))
    if key.lower() in ESTIMATORS:
        spec = ESTIMATORS.spec(key.lower())
        # weight options go to the estimators that load weights (the spec says which)
        kw = {"allow_unverified": allow_unverified, "weights_path": weights_path} if spec.weights else {}
        return ESTIMATORS.create(spec.name, device, **kw)
    path = Path(key).expanduser()
    if path.is_dir():
        return PrecomputedFlow(path, device)
    raise ESTIMATORS.unknown(key, ESTIMATORS.names())
