"""`instcolor`: Instance-aware Image Colorization (Su, Chu & Huang, CVPR 2020), automatic, per frame.

As the official `test_fusion.py` (`--sample_p 1.0 --fineSize 256`, no colour hints): the frame and
each detected instance crop are resized to 256x256 (PIL bilinear in the official code, which resizes
the RGB image before taking L; here L itself, bilinear with anti-aliasing), the networks see
A = (L - 50) / 100, zero ab hints and a mask of -0.5 (0 - mask_cent). With boxes the instance
generator runs on the crops and the fusion generator blends its features into the full image's;
with no detection the image goes through the full-image generator alone (`set_forward_without_box`).
ab = tanh output x 110, joined with L, `lab2rgb`, clipped, `img_as_ubyte` (rounding). The official
result stays 256x256; here ab is upsampled bilinearly to the GT size and joined with the GT's
full-resolution L (DESIGN.md). Boxes come from `detector.py` (torchvision Mask R-CNN, threshold 0.7,
at most 8). A box that is empty after the int32 cast is skipped (the official crop would fail).
The official code loads its checkpoints with strict=False; here all three load strictly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vcbench.baselines.base import Colorizer
from vcbench.baselines.checkpoints import load_with_bn_counters
from vcbench.baselines.instcolor.detector import MAX_BOXES, MIN_SIZE, SCORE_THRESH, build_detector, detect
from vcbench.baselines.instcolor.files import HOW, MEMBERS, WEIGHTS_NAME, load_instcolor_files
from vcbench.baselines.instcolor.networks import ColorGenerator, FusionGenerator, box_info
from vcbench.errors import InputError
from vcbench.lab import lab_to_rgb
from vcbench.weights import WeightFile

L_CENT, L_NORM, AB_NORM, MASK_CENT, NET_SIZE = 50.0, 100.0, 110.0, 0.5, 256


def _load(net: torch.nn.Module, state: dict[str, torch.Tensor], member: str) -> None:
    """Strict load; the fusion file carries nn.DataParallel's `module.` prefix."""
    load_with_bn_counters(net, state, member, Path(member), model="InstColorization", hint=HOW)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=(h > size or w > size))


class InstColor(Colorizer):
    """Instance-aware image colorization with its published generators; references are not used."""

    name = "instcolor"
    description = "Instance-aware Image Colorization (Su et al. CVPR 2020), Mask R-CNN boxes, per frame"
    weights = (WEIGHTS_NAME, "maskrcnn_v2")
    uses_reference = False
    batch_size = 4

    def __init__(self, device: str | torch.device = "cpu", *, weights: str | Path | None = None,
                 detector_weights: str | Path | None = None, allow_unverified_weights: bool = False,
                 quiet: bool = False, net_size: int = NET_SIZE, score_thresh: float = SCORE_THRESH,
                 max_boxes: int = MAX_BOXES, detector_size: int = MIN_SIZE) -> None:
        net_size, max_boxes, detector_size = int(net_size), int(max_boxes), int(detector_size)
        if net_size < 64 or net_size % 8:
            raise InputError(f"instcolor net_size must be a multiple of 8 and >= 64, got {net_size}")
        super().__init__(device, net_size=net_size, score_thresh=float(score_thresh), max_boxes=max_boxes,
                         detector_size=detector_size)
        # The detector first: its file carries a hash, so a wrong file fails before 400 MB are read.
        resolved, self.detector = build_detector(self.device, weights=detector_weights,
                                                 allow_unverified=allow_unverified_weights,
                                                 score_thresh=float(score_thresh), min_size=detector_size)
        states, sha, verified = load_instcolor_files(weights, allow_unverified=allow_unverified_weights,
                                                                quiet=quiet)
        self.instance_net, self.full_net, self.fusion_net = ColorGenerator(), ColorGenerator(), FusionGenerator()
        for net, key in ((self.instance_net, "instance"), (self.full_net, "full"), (self.fusion_net, "fusion")):
            _load(net, states[key], MEMBERS[key])
            net.eval().requires_grad_(False).to(self.device)
        self._used = {**{f: WeightFile(d, verified) for f, d in sha.items()}, **resolved.used()}
        self.last_boxes: list[np.ndarray] = []

    def start_clip(self, references: Sequence[np.ndarray]) -> None:
        """Automatic colorization: no references and no state between frames."""

    def weights_used(self) -> dict[str, WeightFile]:
        return dict(self._used)

    @torch.no_grad()
    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        if luminance.dim() != 4 or luminance.shape[1] != 1:
            raise InputError(f"expected (N, 1, H, W) luminance, got {tuple(luminance.shape)}")
        L = luminance.to(self.device, torch.float32)
        self.last_boxes = detect(self.detector, L, self.options["max_boxes"])
        return torch.cat([self.colorize_with_boxes(L[i:i + 1], b) for i, b in enumerate(self.last_boxes)])

    @torch.no_grad()
    def colorize_with_boxes(self, L: torch.Tensor, boxes: np.ndarray) -> torch.Tensor:
        """One frame (1, 1, H, W) with the given int (K, 4) x0, y0, x1, y1 boxes (K may be 0)."""
        s = self.options["net_size"]
        h, w = L.shape[-2:]
        boxes = [tuple(int(v) for v in b) for b in np.asarray(boxes).reshape(-1, 4)]
        boxes = [b for b in boxes if b[2] > b[0] and b[3] > b[1]]
        A = (_resize(L, s) - L_CENT) / L_NORM
        hint, mask = torch.zeros_like(A).expand(-1, 2, -1, -1), torch.full_like(A, -MASK_CENT)
        if boxes:
            crops = torch.cat([(_resize(L[..., y0:y1, x0:x1], s) - L_CENT) / L_NORM for x0, y0, x1, y1 in boxes])
            _, feats = self.instance_net.features(crops, torch.zeros_like(crops).expand(-1, 2, -1, -1),
                                                  torch.full_like(crops, -MASK_CENT))
            infos = [[box_info(b, (w, h), s // k) for b in boxes] for k in (1, 2, 4, 8)]
            ab = self.fusion_net.fused(A, hint, mask, feats, infos)
        else:
            ab = self.full_net(A, hint, mask)
        ab = F.interpolate(ab * AB_NORM, size=(h, w), mode="bilinear", align_corners=False)
        lab = torch.cat([L, ab], 1)
        if lab.device.type == "cpu":
            lab = lab.double()
        return torch.round(lab_to_rgb(lab) * 255.0).to(torch.uint8)

    def config(self) -> dict:
        return dict(self.options)
