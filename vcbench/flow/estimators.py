"""Flow estimator registry and the GT flow pairs that warp error and flicker share.

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
from vcbench.flow.occlusion import occlusion_mask
from vcbench.flow.precomputed import PrecomputedFlow
from vcbench.metrics.base import FlowPairs

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


def gt_flow_pairs(gt_frames: torch.Tensor, estimator: AnyEstimator, *, clip: str | None = None,
                  start: int = 0) -> FlowPairs:
    """Forward flow and Lai's non-occlusion mask of the consecutive pairs of `gt_frames` (N, 3, H, W) uint8.

    Forward (t -> t+1) and backward (t+1 -> t) flow are both estimated for every pair; the mask is
    Lai's test on them. For `PrecomputedFlow`, pairs are read from disk: `clip` names the clip and
    `start` is the index of `gt_frames[0]` in it. Results are on `gt_frames`' device.
    """
    n, _, h, w = gt_frames.shape
    dev = gt_frames.device
    if n < 2:
        return FlowPairs(fw=torch.zeros((0, 2, h, w), device=dev), noc=torch.zeros((0, 1, h, w), device=dev))
    if isinstance(estimator, PrecomputedFlow):
        if clip is None:
            raise ValueError("precomputed flow needs the clip name")
        p = estimator.pairs(clip, start, n - 1, (h, w))
        return FlowPairs(fw=p.fw.to(dev), noc=p.noc.to(dev))
    a, b = gt_frames[:-1], gt_frames[1:]
    # forward and backward pairs in one call: networks see one larger batch
    both = estimator(torch.cat([a, b]), torch.cat([b, a])).to(dev, torch.float32)
    fw, bw = both[:n - 1], both[n - 1:]
    return FlowPairs(fw=fw, noc=1.0 - occlusion_mask(fw, bw))


#: The name docs/ARCHITECTURE.md uses for `gt_flow_pairs` (the same function).
gt_flow = gt_flow_pairs
