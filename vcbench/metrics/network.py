"""Frozen metric networks in their inference form, for the device they run on.

A metric network never trains, so three things can go that only training needs, without changing the
function it computes:
- BatchNorm after a convolution is a fixed affine map, folded into the convolution's weights and bias
  (Inception's pool3 features move by ~2e-7, float rounding; FID by far less than its 1e-3 tolerance).
- On the CPU, oneDNN's convolutions are faster on channels-last tensors, and in chunks of a few frames
  whose activations stay in cache.
- On the CPU, a convolution directly followed by a ReLU runs as one oneDNN call (`ConvReLU`), bit-equal
  to the two (tests/test_network_fusion.py), one pass less over every activation.
Measured on 2 cores (FID Inception at 299x299, 48 frames): 129 ms/frame eager in batches of 32,
100 ms folded, 62 ms folded + channels-last in chunks of 8 (`benchmarks/score_throughput.py` shows the
effect on a whole scoring run). With conv+ReLU fused (16 real 854x480 frames, same process, old and
new alternated, shared machine at load 2.5-5): 42.1 ms/frame against 43.0 unfused (best of 7 wall
times, 2 threads), and chunks of 4 frames 1-6% below 8 (41.6 vs 42.1 ms wall; 79 vs 87 ms CPU on one
thread). Whole `vcbench score --metrics fid` on 4x24 frame pairs at 854x480, cache cold: 14.0/14.6 s
-> 13.9/14.0 s wall, 24.3/25.0 -> 24.1/24.1 CPU-s. Not kept, because they measured no faster:
prepacked oneDNN weights (1.7x slower), and Inception's sibling 1x1 branches run as one convolution.
LPIPS at 854x480 (fused trunk plus its own fewer-pass input and tap terms, 8 real pairs, HEAD's
module and the new one alternated in one process): 164 -> 151 CPU-ms per pair on 2 threads with
passive OpenMP waits (156 -> 139 on one thread); 1 and 2 pairs per forward equal within 2%, 4 slower;
whole `vcbench score --metrics lpips`, 96 pairs: 11.6/11.7 s -> 11.2/11.0 s wall (load 2.2).
The Inception stays ~2.6x above its FLOP floor: its 17x17 and 8x8 convolutions run at ~150 GFLOP/s
(84% of its time, torch.profiler), against ~350 for AlexNet's larger ones.
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

#: Frames per forward on the CPU: activations of a few 299x299 frames stay in cache (32 is 1.1x
#: slower than 8; 4 measured 1-6% faster than 8 with the fused convolutions, see the module docstring).
CPU_CHUNK = 4


class ConvBNReLU(torch.nn.Module):
    """relu(bn(conv(x))), torchvision's `BasicConv2d` under its attribute names (`conv` without bias,
    `bn` with eps 1e-3), so Inception state dicts load into it; defined here so that the FID Inception
    needs no torchvision import (`inception_net`)."""

    def __init__(self, in_channels: int, out_channels: int, **conv_args: Any) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, out_channels, bias=False, **conv_args)
        self.bn = torch.nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu(self.bn(self.conv(x)), inplace=True)


def _conv_bn_relu_types() -> tuple[type[torch.nn.Module], ...]:
    """The conv -> BatchNorm -> ReLU units: `ConvBNReLU`, and torchvision's `BasicConv2d` (pytorch-fid's
    blocks) where torchvision is already imported (importing it costs ~3 s; unimported, none exists)."""
    if "torchvision" not in sys.modules:
        return (ConvBNReLU,)
    from torchvision.models.inception import BasicConv2d

    return (ConvBNReLU, BasicConv2d)


def fold_batchnorm(net: torch.nn.Module) -> torch.nn.Module:
    """Fold the BatchNorm of each conv -> BatchNorm -> ReLU unit (`_conv_bn_relu_types`) into its
    convolution, in place (eval mode only). Only those units are folded: there the BatchNorm provably
    sees the convolution's output and nothing else.
    """
    if net.training:
        raise ValueError("fold_batchnorm needs a network in eval mode (BatchNorm's running statistics)")
    units = _conv_bn_relu_types()
    for module in net.modules():
        if isinstance(module, units) and isinstance(module.bn, torch.nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = torch.nn.Identity()
    return net


def _pointwise_op() -> Callable[..., torch.Tensor] | None:
    """oneDNN's fused convolution + pointwise op, where this torch build has it."""
    mkldnn = getattr(torch.ops, "mkldnn", None)
    op = getattr(mkldnn, "_convolution_pointwise", None) if mkldnn is not None else None
    return op if op is not None and torch.backends.mkldnn.is_available() else None


class ConvReLU(torch.nn.Module):
    """relu(conv(x)) as one oneDNN call: the ReLU is applied to each output block while it is still in
    cache instead of in a second pass over the whole activation.

    Bit-equal to conv then ReLU because it runs the convolution aten would run: where aten's own rule
    (`_aten_uses_onednn`) hands a convolution to another kernel (1x1 kernels on one thread, tiny
    inputs), or the input is not a float32 channels-last CPU tensor, it calls conv and ReLU as before.
    """

    def __init__(self, conv: torch.nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        self._op = _pointwise_op()
        self._args = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.conv.weight
        if self._op is not None and x.dtype == torch.float32 and x.device.type == "cpu" \
                and x.is_contiguous(memory_format=torch.channels_last) and _aten_uses_onednn(x, w, self.conv):
            return self._op(x, w, self.conv.bias, *self._args, "relu", [], "")
        return torch.relu_(self.conv(x))


def _aten_uses_onednn(x: torch.Tensor, w: torch.Tensor, conv: torch.nn.Conv2d) -> bool:
    """aten's `ConvParams::use_mkldnn` for a float32 CPU convolution (torch 2.x, Convolution.cpp):
    1x1 unstrided kernels go to its native kernel on one thread below 16 images, and so do small
    single-image inputs with kernels up to 3x3."""
    if not torch.backends.mkldnn.enabled:
        return False
    n, (kh, kw) = x.shape[0], w.shape[-2:]
    strided = any(s != 1 for s in conv.stride) or any(d != 1 for d in conv.dilation)
    return ((strided or n >= 16 or kh != 1 or kw != 1 or torch.get_num_threads() > 1)
            and (conv.groups > 1 or (kh > 3 and kw > 3) or n > 1 or x.numel() > 20480))


def _fusable(conv: torch.nn.Module) -> bool:
    return (type(conv) is torch.nn.Conv2d and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and conv.weight.dtype == torch.float32)


def fuse_conv_relu(net: torch.nn.Module) -> torch.nn.Module:
    """Each Conv2d directly followed by a ReLU (in a Sequential, or a folded conv -> BatchNorm -> ReLU
    unit) as one `ConvReLU`, in place; a torch without oneDNN's pointwise op leaves `net` as it is."""
    if _pointwise_op() is None:
        return net
    units = _conv_bn_relu_types()
    for parent in list(net.modules()):
        names = list(parent._modules)
        for i, name in enumerate(names):
            child = parent._modules[name]
            if isinstance(child, units) and isinstance(child.bn, torch.nn.Identity) \
                    and _fusable(child.conv):
                parent._modules[name] = ConvReLU(child.conv)
            elif isinstance(parent, torch.nn.Sequential) and _fusable(child) and i + 1 < len(names) \
                    and type(parent._modules[names[i + 1]]) is torch.nn.ReLU:
                parent._modules[name] = ConvReLU(child)
                parent._modules[names[i + 1]] = torch.nn.Identity()
    return net


def inference_form(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`net` frozen, BatchNorm folded, on `device` (channels-last on the CPU, conv+ReLU fused there)."""
    net = fold_batchnorm(net.requires_grad_(False).eval()).to(device)
    if device.type == "cpu":
        net = fuse_conv_relu(net.to(memory_format=torch.channels_last))
    return net


def input_format(device: torch.device) -> torch.memory_format:
    """The memory layout `inference_form` chose for `device`'s inputs."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def as_input(x: torch.Tensor) -> torch.Tensor:
    """A (N, C, H, W) batch in the memory layout `inference_form` chose for its device."""
    return x.contiguous(memory_format=input_format(x.device))


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
