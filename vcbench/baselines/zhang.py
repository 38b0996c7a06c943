"""Automatic image colorizers of Zhang et al.: ECCV 2016 ("zhang16") and SIGGRAPH 2017 ("zhang17").

Ports of the PyTorch models of github.com/richzhang/colorization with the parameter names and shapes
of the released `colorization_release_v2-9b330a0b.pth` and `siggraph17-df00044c.pth`, loaded
strictly. As in the official demo, the network sees the L of the frame resized to 256x256, with
(L - 50) / 100; its ab (x110) is upsampled bilinearly to the frame's size and joined with the
frame's full-resolution L. ECCV16 predicts a distribution over 313 ab bins; its output is the
expectation (softmax over the bins, then a fixed 1x1 conv holding the bin centres, upsampled x4).
SIGGRAPH17 runs without user hints (ab hints and mask all zero) and regresses ab with tanh.

The official demo resizes the RGB image with PIL bicubic before taking L; the harness only gives
L, so L itself is resized (bicubic with anti-aliasing, PIL's filter when shrinking).
Frames are colorized independently: the reference images are ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vcbench import weights as registry
from vcbench.baselines.base import Colorizer
from vcbench.baselines.checkpoints import load_with_bn_counters
from vcbench.errors import InputError, WeightsError
from vcbench.lab import lab_to_rgb_uint8
from vcbench.weights import WeightFile

L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0
NET_SIZE = 256


def _convs(channels: list[int], dilation: int = 1, stride_last: int = 1, lead_relu: bool = False,
           norm: bool = True) -> nn.Sequential:
    """[ReLU] (conv 3x3, ReLU)* [BatchNorm]: the layout of the official blocks (indices matter)."""
    layers: list[nn.Module] = [nn.ReLU(True)] if lead_relu else []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        stride = stride_last if i == len(channels) - 2 else 1
        layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation), nn.ReLU(True)]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


class ECCV16Net(nn.Module):
    """"Colorful Image Colorization" (Zhang, Isola, Efros, ECCV 2016): L -> 313-bin distribution -> ab."""

    def __init__(self) -> None:
        super().__init__()
        self.model1 = _convs([1, 64, 64], stride_last=2)
        self.model2 = _convs([64, 128, 128], stride_last=2)
        self.model3 = _convs([128, 256, 256, 256], stride_last=2)
        self.model4 = _convs([256, 512, 512, 512])
        self.model5 = _convs([512, 512, 512, 512], dilation=2)
        self.model6 = _convs([512, 512, 512, 512], dilation=2)
        self.model7 = _convs([512, 512, 512, 512])
        self.model8 = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1), nn.ReLU(True),
                                    nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True),
                                    nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True),
                                    nn.Conv2d(256, 313, 1))
        self.model_out = nn.Conv2d(313, 2, 1, bias=False)  # the 313 ab bin centres (/110)

    def logits(self, l: torch.Tensor) -> torch.Tensor:
        x = (l - L_CENT) / L_NORM
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7,
                      self.model8):
            x = block(x)
        return x

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        """L (N, 1, H, W) in 0..100 -> ab (N, 2, H, W) (H, W multiples of 8)."""
        ab = self.model_out(torch.softmax(self.logits(l), dim=1))
        return F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False) * AB_NORM


class SIGGRAPH17Net(nn.Module):
    """"Real-Time User-Guided Image Colorization" (Zhang et al., SIGGRAPH 2017), without hints."""

    def __init__(self, classes: int = 529) -> None:
        super().__init__()
        self.model1 = _convs([4, 64, 64])
        self.model2 = _convs([64, 128, 128])
        self.model3 = _convs([128, 256, 256, 256])
        self.model4 = _convs([256, 512, 512, 512])
        self.model5 = _convs([512, 512, 512, 512], dilation=2)
        self.model6 = _convs([512, 512, 512, 512], dilation=2)
        self.model7 = _convs([512, 512, 512, 512])
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        self.model8 = _convs([256, 256, 256], lead_relu=True)
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model9 = _convs([128, 128], lead_relu=True)
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(0.2))
        self.model_class = nn.Sequential(nn.Conv2d(256, classes, 1))  # in the checkpoint, unused here
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(self, l: torch.Tensor, ab_hint: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """L (N, 1, H, W) in 0..100 (H, W multiples of 8) -> ab (N, 2, H, W); no hints by default."""
        if ab_hint is None:
            ab_hint = torch.zeros_like(l).expand(-1, 2, -1, -1)
        if mask is None:
            mask = torch.zeros_like(l)
        c1 = self.model1(torch.cat(((l - L_CENT) / L_NORM, ab_hint / AB_NORM, mask), 1))
        c2 = self.model2(c1[:, :, ::2, ::2])
        c3 = self.model3(c2[:, :, ::2, ::2])
        c7 = self.model7(self.model6(self.model5(self.model4(c3[:, :, ::2, ::2]))))
        c8 = self.model8(self.model8up(c7) + self.model3short8(c3))
        c9 = self.model9(self.model9up(c8) + self.model2short9(c2))
        c10 = self.model10(self.model10up(c9) + self.model1short10(c1))
        return self.model_out(c10) * AB_NORM


def load_zhang_state(module: nn.Module, state: dict[str, torch.Tensor], source: Path, name: str) -> None:
    """Strict load of a richzhang/colorization file (old files lack BatchNorm's counters)."""
    load_with_bn_counters(module, state, source.name, source, model=name,
                          hint=f"use the official file (`vcbench weights download {name}`)")


class _Zhang(Colorizer):
    uses_reference = False
    batch_size = 8
    #: Types of the `**options` (`vcbench evaluate` checks `--model-option` values against them).
    option_types = {"net_size": int, "weights": str, "allow_unverified_weights": bool, "download": bool, "quiet": bool}
    _net_class: type[nn.Module]

    def __init__(self, device: str | torch.device = "cpu", **options) -> None:
        super().__init__(device, **options)
        known = {"weights", "allow_unverified_weights", "download", "quiet", "net_size"}
        unknown = set(options) - known
        if unknown:
            raise InputError(f"unknown {self.name} option(s): {', '.join(sorted(unknown))}",
                             hint=f"valid: {', '.join(sorted(known))}")
        self.net_size = int(options.get("net_size", NET_SIZE))
        if self.net_size < 32 or self.net_size % 8:
            raise InputError(f"net_size must be a multiple of 8 and >= 32, got {self.net_size}")
        resolved = registry.resolve(self.name, options.get("weights"), download=options.get("download", True),
                                    allow_unverified=bool(options.get("allow_unverified_weights", False)),
                                    quiet=bool(options.get("quiet", False)))
        self._used = resolved.used()
        state = registry.load_state_dict(resolved.path)
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise WeightsError("not a state dict of tensors", path=resolved.path)
        self.net = self._net_class()
        load_zhang_state(self.net, state, Path(resolved.path), self.name)
        self.net = self.net.eval().requires_grad_(False).to(self.device)

    def start_clip(self, references: Sequence[np.ndarray]) -> None:
        """Automatic colorization: references are not used and there is no state between frames."""

    @torch.inference_mode()
    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        if luminance.dim() != 4 or luminance.shape[1] != 1:
            raise InputError(f"expected (N, 1, H, W) luminance, got {tuple(luminance.shape)}")
        l = luminance.to(self.device, torch.float32)
        h, w = l.shape[2:]
        s = self.net_size
        small = F.interpolate(l, size=(s, s), mode="bicubic", align_corners=False, antialias=(h > s or w > s))
        ab = self.net(small)
        ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
        lab = torch.cat((l, ab), 1)
        if lab.device.type == "cpu":
            lab = lab.double()  # the official demo converts with skimage in float64
        return lab_to_rgb_uint8(lab)

    def weights_used(self) -> dict[str, WeightFile]:
        return dict(self._used)

    def config(self) -> dict:
        return {"net_size": self.net_size}


class Zhang16(_Zhang):
    """Zhang et al. ECCV 2016, official weights, per frame, no reference."""

    name = "zhang16"
    description = "Colorful Image Colorization (Zhang et al. ECCV 2016), automatic, per frame"
    weights = ("zhang16",)
    _net_class = ECCV16Net


class Zhang17(_Zhang):
    """Zhang et al. SIGGRAPH 2017 without user hints, official weights, per frame, no reference."""

    name = "zhang17"
    description = "Real-Time User-Guided Image Colorization (Zhang et al. SIGGRAPH 2017) without hints, per frame"
    weights = ("zhang17",)
    _net_class = SIGGRAPH17Net
