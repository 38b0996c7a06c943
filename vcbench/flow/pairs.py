"""GT flow of consecutive frame pairs, as warp error and flicker use it: forward flow plus Lai's
non-occlusion mask, from an estimator or read from precomputed files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch

from vcbench.flow.base import FlowEstimator
from vcbench.flow.occlusion import occlusion_mask

if TYPE_CHECKING:
    from vcbench.flow.precomputed import PrecomputedFlow


@dataclass
class FlowPairs:
    """GT flow for the consecutive pairs (t, t+1) whose second frame lies in the current batch.

    `fw` is the forward flow t -> t+1 computed on the GT video (P, 2, H, W), float32, pixels (u, v);
    `noc` is Lai's non-occlusion mask (P, 1, H, W), float32, 1 = valid.
    """

    fw: torch.Tensor
    noc: torch.Tensor


def flow_pairs(gt_frames: torch.Tensor, estimator: FlowEstimator, *, clip: str | None = None,
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
    if estimator.precomputed:
        if clip is None:
            raise ValueError("precomputed flow needs the clip name")
        # the declared capability (PrecomputedFlow is the one estimator that sets it; importing it here
        # would be a cycle: precomputed.py imports this module)
        p = cast("PrecomputedFlow", estimator).pairs(clip, start, n - 1, (h, w))
        return FlowPairs(fw=p.fw.to(dev), noc=p.noc.to(dev))
    a, b = gt_frames[:-1], gt_frames[1:]
    # forward and backward pairs in one call: networks see one larger batch
    both = estimator(torch.cat([a, b]), torch.cat([b, a])).to(dev, torch.float32)
    fw, bw = both[:n - 1], both[n - 1:]
    return FlowPairs(fw=fw, noc=1.0 - occlusion_mask(fw, bw))
