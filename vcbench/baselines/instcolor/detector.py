"""Instance boxes for InstColorization with torchvision's Mask R-CNN instead of detectron2.

The official `inference_bbox.py` runs detectron2's Mask R-CNN X101-32x8d FPN 3x on the image's L
channel (OpenCV's 8-bit L, replicated to three channels) with `SCORE_THRESH_TEST = 0.7`, and
`test_fusion.py` keeps at most 8 boxes (`box_num=8`: the 8 best scores, in ascending score order,
when there are more), cast to int32. Here the detector is torchvision's Mask R-CNN ResNet-50 FPN v2
(COCO, `maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth`, through the weights resolver; X101 is not in
torchvision), given the same grey image, with the same threshold, count and casting; its transform
resizes the shorter side to 800 (detectron2's test size too) unless `min_size` says otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vcbench.weights import build_loaded, load_built

WEIGHTS_NAME = "maskrcnn_v2"
SCORE_THRESH, MAX_BOXES, MIN_SIZE, MAX_SIZE = 0.7, 8, 800, 1333


def build_detector(device: torch.device, *, weights: str | Path | None = None, allow_unverified: bool = False,
                   score_thresh: float = SCORE_THRESH, min_size: int = MIN_SIZE):
    """(ResolvedWeights, the frozen Mask R-CNN) loaded strictly through the resolver."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    def build(state):
        return build_loaded(lambda: maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None,
                                                             box_score_thresh=score_thresh, min_size=min_size,
                                                             max_size=max(MAX_SIZE, min_size)), state)

    resolved, net = load_built(WEIGHTS_NAME, build, what="a torchvision Mask R-CNN ResNet-50 FPN v2", path=weights,
                               allow_unverified=allow_unverified)
    return resolved, net.requires_grad_(False).eval().to(device, memory_format=torch.contiguous_format)


def grey_for_detector(L: torch.Tensor) -> torch.Tensor:
    """(1, H, W) L in 0..100 -> (3, H, W) in [0, 1]: OpenCV's 8-bit L (round(L * 255 / 100)) replicated."""
    return (torch.round(L * 2.55).clamp(0, 255) / 255.0).expand(3, -1, -1)


def select_boxes(boxes: torch.Tensor, scores: torch.Tensor, max_boxes: int = MAX_BOXES) -> np.ndarray:
    """int32 (K, 4) x0, y0, x1, y1: all boxes, or the `max_boxes` best in ascending score order."""
    b = boxes.detach().cpu().numpy()
    if max_boxes > 0 and b.shape[0] > max_boxes:
        s = scores.detach().cpu().numpy()
        b = b[np.argsort(s, axis=0)[s.shape[0] - max_boxes:]]
    return b.astype(np.int32)


@torch.no_grad()
def detect(net, L: torch.Tensor, max_boxes: int = MAX_BOXES) -> list[np.ndarray]:
    """Boxes per frame of (N, 1, H, W) L."""
    out = net([grey_for_detector(L[i]) for i in range(L.shape[0])])
    return [select_boxes(o["boxes"], o["scores"], max_boxes) for o in out]
