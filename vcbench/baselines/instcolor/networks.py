"""InstColorization's three generators (Su, Chu & Huang, CVPR 2020; ericsujw/InstColorization
`models/networks.py`), with the official parameter names.

The full-image (`SIGGRAPHGenerator`, checkpoint `latest_net_GComp.pth`) and instance
(`InstanceGenerator`, `latest_net_G.pth`) generators have the SIGGRAPH 2017 layout, so they reuse
`vcbench.baselines.zhang.SIGGRAPH17Net`'s modules (same names, 529-class head included); their
inputs are already normalised: A = (L - 50) / 100, the ab hints B / 110 and the mask minus 0.5, and
they return the tanh ab (x110 is the caller's). The fusion generator (`latest_net_GF.pth`) adds a
`WeightGenerator` after every stage, which blends the instance features (resized and zero-padded
into each box) with the full-image features by a per-pixel softmax over learned weight maps; outside
every box the background weight gets +1e5, so there it is the full-image feature alone.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vcbench.baselines.zhang import SIGGRAPH17Net

#: Features the fusion reads: (name, weight layer, box scale index 0..3 for 1x, 2x, 4x, 8x).
STAGES = (("conv1_2", "weight_layer", 0), ("conv2_2", "weight_layer2", 1), ("conv3_3", "weight_layer3", 2),
          ("conv4_3", "weight_layer4", 3), ("conv5_3", "weight_layer5", 3), ("conv6_3", "weight_layer6", 3),
          ("conv7_3", "weight_layer7", 3), ("conv8_up", "weight_layer8_1", 2), ("conv8_3", "weight_layer8_2", 2),
          ("conv9_up", "weight_layer9_1", 1), ("conv9_3", "weight_layer9_2", 1), ("conv10_up", "weight_layer10_1", 0),
          ("conv10_2", "weight_layer10_2", 0))


class ColorGenerator(SIGGRAPH17Net):
    """SIGGRAPHGenerator / InstanceGenerator: ab (tanh) and, for the instance branch, the features."""

    def features(self, A: torch.Tensor, B: torch.Tensor, mask: torch.Tensor,
                 fuse=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`fuse(name, feature)` (the fusion generator's weight layers) is applied after each stage."""
        f: dict[str, torch.Tensor] = {}
        step = fuse or (lambda name, x: x)
        f["conv1_2"] = step("conv1_2", self.model1(torch.cat((A, B, mask), 1)))
        f["conv2_2"] = step("conv2_2", self.model2(f["conv1_2"][:, :, ::2, ::2]))
        f["conv3_3"] = step("conv3_3", self.model3(f["conv2_2"][:, :, ::2, ::2]))
        f["conv4_3"] = step("conv4_3", self.model4(f["conv3_3"][:, :, ::2, ::2]))
        f["conv5_3"] = step("conv5_3", self.model5(f["conv4_3"]))
        f["conv6_3"] = step("conv6_3", self.model6(f["conv5_3"]))
        f["conv7_3"] = step("conv7_3", self.model7(f["conv6_3"]))
        f["conv8_up"] = step("conv8_up", self.model8up(f["conv7_3"]) + self.model3short8(f["conv3_3"]))
        f["conv8_3"] = step("conv8_3", self.model8(f["conv8_up"]))
        f["conv9_up"] = step("conv9_up", self.model9up(f["conv8_3"]) + self.model2short9(f["conv2_2"]))
        f["conv9_3"] = step("conv9_3", self.model9(f["conv9_up"]))
        f["conv10_up"] = step("conv10_up", self.model10up(f["conv9_3"]) + self.model1short10(f["conv1_2"]))
        f["conv10_2"] = step("conv10_2", self.model10(f["conv10_up"]))
        return self.model_out(f["conv10_2"]), f

    def forward(self, A: torch.Tensor, B: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.features(A, B, mask)[0]


def _conv_stack(cin: int, inner: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, inner, 3, padding=1), nn.ReLU(True), nn.Conv2d(inner, inner, 3, padding=1),
                         nn.ReLU(True), nn.Conv2d(inner, 1, 3, padding=1), nn.ReLU(True))


class WeightGenerator(nn.Module):
    def __init__(self, channels: int, inner: int = 16) -> None:
        super().__init__()
        self.simple_instance_conv = _conv_stack(channels, inner)
        self.simple_bg_conv = _conv_stack(channels, inner)

    @staticmethod
    def resize_and_pad(x: torch.Tensor, info: list[int]) -> torch.Tensor:
        left, right, top, bottom, width, height = info
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        return F.pad(x, (left, right, top, bottom), "constant", 0)

    def forward(self, instance: torch.Tensor, background: torch.Tensor, boxes: list[list[int]]) -> torch.Tensor:
        weights, feats = [], []
        covered = torch.zeros_like(background[:1, :1])
        for i, info in enumerate(boxes):
            crop = instance[i:i + 1]
            weights.append(self.resize_and_pad(self.simple_instance_conv(crop), info))
            feats.append(self.resize_and_pad(crop, info))
            inside = torch.zeros_like(covered)
            left, _, top, _, width, height = info
            inside[0, 0, top:top + height, left:left + width] = 1.0
            covered = (covered + inside).clamp(0.0, 1.0)
        weights.append(self.simple_bg_conv(background) + (1 - covered) * 100000.0)
        feats.append(background)
        w = torch.softmax(torch.cat(weights, 1), 1).permute(1, 0, 2, 3)
        return (torch.cat(feats, 0) * w).sum(0, keepdim=True)


class FusionGenerator(ColorGenerator):
    """The fusion generator: full-image trunk with a WeightGenerator after each of its 13 stages."""

    def __init__(self) -> None:
        super().__init__()
        widths = {"conv1_2": 64, "conv2_2": 128, "conv3_3": 256, "conv4_3": 512, "conv5_3": 512, "conv6_3": 512,
                  "conv7_3": 512, "conv8_up": 256, "conv8_3": 256, "conv9_up": 128, "conv9_3": 128,
                  "conv10_up": 128, "conv10_2": 128}
        for name, layer, _ in STAGES:
            setattr(self, layer, WeightGenerator(widths[name]))
        self.weight_layerout = WeightGenerator(2)  # in the checkpoint; the official forward never uses it

    def fused(self, A: torch.Tensor, B: torch.Tensor, mask: torch.Tensor, instance: dict[str, torch.Tensor],
              boxes: list[list[list[int]]]) -> torch.Tensor:
        """ab (tanh) of one image (batch 1) fused with its instances' features; `boxes[s][i]` is box i's
        [left, right, top, bottom, width, height] at scale s (1, 1/2, 1/4, 1/8 of the network size)."""
        layers = {name: (getattr(self, layer), scale) for name, layer, scale in STAGES}

        def fuse(name: str, x: torch.Tensor) -> torch.Tensor:
            layer, scale = layers[name]
            return layer(instance[name], x, boxes[scale])

        return self.features(A, B, mask, fuse)[0]


def _one_pixel_at_least(lo: int, hi: int, final: int) -> tuple[int, int, int]:
    """(lo, hi, extent) of one axis of a box; an empty extent becomes one pixel, grown towards the
    far side when there is room (final - hi > 1), else towards the near side, as the official code."""
    if hi - lo >= 1:
        return lo, hi, hi - lo
    if final - hi > 1:
        return lo, hi + 1, 1
    return lo - 1, hi, 1


def box_info(box: tuple[int, int, int, int], image_size: tuple[int, int], final: int) -> list[int]:
    """[left, right, top, bottom, width, height] of a box (x0, y0, x1, y1 in pixels of an image of
    (width, height)) at a square `final` size, as the official `get_box_info`."""
    w_img, h_img = image_size
    x0, x1, bw = _one_pixel_at_least(int(box[0] / w_img * final), int(box[2] / w_img * final), final)
    y0, y1, bh = _one_pixel_at_least(int(box[1] / h_img * final), int(box[3] / h_img * final), final)
    return [x0, final - x1, y0, final - y1, bw, bh]
