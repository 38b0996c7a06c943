"""GT flow of consecutive frame pairs, as warp error, flicker and the training-set build use it:
forward flow plus Lai's non-occlusion mask (and, for builds, the backward flow), from an estimator or
read from precomputed files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch

from vcbench.flow.base import FlowEstimator
from vcbench.flow.occlusion import non_occlusion_mask

if TYPE_CHECKING:
    from vcbench.flow.precomputed import PrecomputedFlow


@dataclass
class FlowPairs:
    """GT flow for the consecutive pairs (t, t+1) whose second frame lies in the current batch.

    `fw` is the forward flow t -> t+1 computed on the GT video (P, 2, H, W), float32, pixels (u, v);
    `noc` is Lai's non-occlusion mask (P, 1, H, W), float32, 1 = valid; `bw` the backward flow
    t+1 -> t (P, 2, H, W) when asked for (`keep_backward`), else None.
    """

    fw: torch.Tensor
    noc: torch.Tensor
    bw: torch.Tensor | None = None


def flow_pairs(gt_frames: torch.Tensor, estimator: FlowEstimator, *, clip: str | None = None,
               start: int = 0, keep_backward: bool = False, chunk: int | None = None) -> FlowPairs:
    """Forward flow and Lai's non-occlusion mask of the consecutive pairs of `gt_frames` (N, 3, H, W) uint8.

    Forward (t -> t+1) and backward (t+1 -> t) flow are both estimated for every pair, by one
    `estimator.pair_flows` call per `chunk` pairs (None: all pairs in one call), and the mask is
    Lai's test on them; `keep_backward` returns the backward flow too. For precomputed flow (`estimator.precomputed`),
    pairs are read from disk: `clip` names the clip and `start` is the index of `gt_frames[0]` in it.
    Results are on `gt_frames`' device.
    """
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be a positive number of pairs, got {chunk}")
    n, _, h, w = gt_frames.shape
    dev = gt_frames.device
    if n < 2:
        empty = torch.zeros((0, 2, h, w), device=dev)
        return FlowPairs(fw=empty, noc=torch.zeros((0, 1, h, w), device=dev), bw=empty if keep_backward else None)
    if estimator.precomputed:
        if clip is None:
            raise ValueError("precomputed flow needs the clip name")
        if keep_backward:
            raise ValueError("precomputed flow gives forward flow and masks only, no backward flow")
        # the declared capability (PrecomputedFlow is the one estimator that sets it; importing it here
        # would be a cycle: precomputed.py imports this module)
        p = cast("PrecomputedFlow", estimator).pairs(clip, start, n - 1, (h, w))
        return FlowPairs(fw=p.fw.to(dev), noc=p.noc.to(dev))
    step = n - 1 if chunk is None else chunk
    fws, nocs, bws = [], [], []
    for s in range(0, n - 1, step):
        e = min(s + step, n - 1)
        fw, bw = (f.to(dev, torch.float32) for f in estimator.pair_flows(gt_frames[s:e + 1]))
        fws.append(fw)
        nocs.append(non_occlusion_mask(fw, bw))
        if keep_backward:
            bws.append(bw)
    joined = (lambda ts: ts[0] if len(ts) == 1 else torch.cat(ts))  # noqa: E731  (one chunk: no copy)
    return FlowPairs(fw=joined(fws), noc=joined(nocs), bw=joined(bws) if keep_backward else None)
