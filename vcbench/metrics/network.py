"""Frozen metric networks in their inference form, for the device they run on.

A metric network never trains, so two things can go that only training needs, without changing the
function it computes:
- BatchNorm after a convolution is a fixed affine map, folded into the convolution's weights and bias
  (Inception's pool3 features move by ~2e-7, float rounding; FID by far less than its 1e-3 tolerance).
- On the CPU, oneDNN's convolutions are faster on channels-last tensors, and in chunks of a few frames
  whose activations stay in cache.
Measured on 2 cores (FID Inception at 299x299, 48 frames): 129 ms/frame eager in batches of 32,
100 ms folded, 62 ms folded + channels-last in chunks of 8 (`benchmarks/score_throughput.py` shows the
effect on a whole scoring run).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from vcbench.metrics.memo import BatchMemo
from vcbench.metrics.sizing import frame_chunks
from vcbench.weights import WeightFile, load_built

if TYPE_CHECKING:
    from vcbench.weights import ResolvedWeights

N = TypeVar("N", bound="SharedNetwork")

#: Frames per forward on the CPU: activations of a few 299x299 frames stay in cache (measured best
#: at 4-8 frames; 32 is 1.1x slower).
CPU_CHUNK = 8


def fold_batchnorm(net: torch.nn.Module) -> torch.nn.Module:
    """Fold each Inception `BasicConv2d`'s BatchNorm into its convolution, in place (eval mode only).

    Only torchvision's `BasicConv2d` (relu(bn(conv(x)))), which pytorch-fid's Inception also uses, is
    folded: there the BatchNorm provably sees the convolution's output and nothing else.
    """
    if net.training:
        raise ValueError("fold_batchnorm needs a network in eval mode (BatchNorm's running statistics)")
    if "torchvision" not in sys.modules:  # no BasicConv2d can exist; importing torchvision costs 1-1.7 s
        return net
    from torchvision.models.inception import BasicConv2d

    for module in net.modules():
        if isinstance(module, BasicConv2d) and isinstance(module.bn, torch.nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = torch.nn.Identity()
    return net


def inference_form(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`net` frozen, BatchNorm folded, on `device` (channels-last on the CPU)."""
    net = fold_batchnorm(net.requires_grad_(False).eval()).to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    return net


def as_input(x: torch.Tensor) -> torch.Tensor:
    """A (N, C, H, W) batch in the memory layout `inference_form` chose for its device."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


def chunk_size(device: torch.device, batch_size: int | None) -> int:
    """Frames per forward: the caller's batch size (default: no limit), capped at `CPU_CHUNK` on the CPU."""
    step = max(1, batch_size) if batch_size else 1 << 30
    return min(step, CPU_CHUNK) if device.type == "cpu" else step


def _prepared(frames: torch.Tensor, device: torch.device, prepare: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`prepare` (which resizes to the network's input) applied in groups whose float32 full-resolution
    temporaries (two per frame) fit `sizing.work_bytes`: a 1080p frame alone is 50 MB of them."""
    per_frame = 8 * math.prod(int(s) for s in frames.shape[1:])
    parts = [prepare(frames[s].to(device)) for s in frame_chunks(frames.shape[0], per_frame, device)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def load_network(weights: str, build: Callable[[dict[str, torch.Tensor]], torch.nn.Module], device: torch.device, *,
                 what: str, weights_path: str | Path | None = None,
                 allow_unverified: bool = False) -> tuple[ResolvedWeights, torch.nn.Module]:
    """`vcbench.weights.load_built` (the weight file `weights`, `build(state_dict)` strictly; a state
    dict that does not fit is a `WeightsError` naming the file), returned in inference form."""
    resolved, net = load_built(weights, build, what=what, path=weights_path, allow_unverified=allow_unverified)
    return resolved, inference_form(net, device)


def forward_in_chunks(net: torch.nn.Module, frames: torch.Tensor, device: torch.device, batch_size: int | None,
                      prepare: Callable[[torch.Tensor], torch.Tensor], out_dim: int) -> torch.Tensor:
    """(N, out_dim) outputs of `net` on `prepare`d uint8 frames, `chunk_size` frames per forward."""
    step = chunk_size(device, batch_size)
    out = [net(as_input(_prepared(frames[i:i + step], device, prepare))).flatten(1)
           for i in range(0, frames.shape[0], step)]
    return torch.cat(out) if out else torch.zeros((0, out_dim), device=device)


class SharedNetwork:
    """A frozen network that several metrics share (FID/KID's Inception, top1/top5's VGG19): its weight
    file (`resolved`, set by the subclass) and its outputs for the last batches it saw (prediction and
    GT of one update), so each batch goes through it once whichever metric asks first."""

    resolved: ResolvedWeights

    def __init__(self) -> None:
        self._memo = BatchMemo(2)

    def weights_used(self) -> dict[str, WeightFile]:
        return self.resolved.used()

    def remembered(self, frames: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """`compute(frames)`, or the output this network gave for the very same batch."""
        hit = self._memo.get(frames)
        if hit is not None:
            return hit
        return self._memo.put(frames, compute(frames))


def shared_network(shared: dict | None, cls: type[N], device: str | torch.device, **kwargs: Any) -> N:
    """One `cls(device, **kwargs)` per (class, device, weights) in the caller's `shared` dict (a new one
    without it), so the metrics of one run share its weights and its outputs."""
    if shared is None:
        return cls(device, **kwargs)
    key = (cls.__name__, str(torch.device(device)), str(kwargs.get("weights_path")),
           bool(kwargs.get("allow_unverified", False)))
    if key not in shared:
        shared[key] = cls(device, **kwargs)
    return shared[key]
