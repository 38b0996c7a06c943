"""VGG19 convolutional trunk as DEVC uses it: Caffe conventions, relu1_2..relu5_2 outputs.

DEVC's `data/vgg19_conv.pth` holds the 16 conv layers of VGG19 named `conv1_1`..`conv5_4` (Caffe
weights: BGR input in 0..255 with the ImageNet mean subtracted, no std division). The parameter
names here are those of that file, so it loads with `strict=True`. conv5_3/conv5_4 are never needed
for DEVC's outputs (it reads relu5_2 at most) but are kept so the official file loads strictly.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Caffe ImageNet mean in BGR order on a 0..1 scale (DEVC's `vgg_preprocess`).
CAFFE_MEAN_BGR = (0.40760392, 0.45795686, 0.48501961)

# (name, in, out) in forward order; a pool follows the last conv of each block.
_LAYERS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64),
    ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512),
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512), ("conv5_4", 512, 512),
)
_POOL_AFTER = frozenset({"conv1_2", "conv2_2", "conv3_4", "conv4_4"})
#: Output keys as DEVC names them ("r12" = relu1_2, ...).
FEATURE_KEYS = ("r12", "r22", "r32", "r42", "r52")


def caffe_preprocess(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (N, 3, H, W) -> BGR minus the Caffe mean, times 255."""
    bgr = rgb.flip(1)
    mean = torch.tensor(CAFFE_MEAN_BGR, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (bgr - mean) * 255.0


class VGG19Features(nn.Module):
    """VGG19 conv trunk returning the relu activations DEVC asks for (max pooling, as in DEVC)."""

    def __init__(self) -> None:
        super().__init__()
        for name, cin, cout in _LAYERS:
            self.add_module(name, nn.Conv2d(cin, cout, kernel_size=3, padding=1))

    def forward(self, rgb: torch.Tensor, keys: Sequence[str] = FEATURE_KEYS,
                preprocess: bool = True) -> list[torch.Tensor]:
        """Features for `keys` (e.g. "r22", "r52"); `rgb` in [0, 1] unless `preprocess=False`.

        Stops after the deepest requested layer, so asking for r52 never runs conv5_3/conv5_4.
        """
        wanted = {k: None for k in keys}
        x = caffe_preprocess(rgb) if preprocess else rgb
        deepest = max(_key_index(k) for k in keys)
        for idx, (name, _, _) in enumerate(_LAYERS):
            if idx > deepest:
                break
            x = F.relu(getattr(self, name)(x))
            key = "r" + name[4] + name[6]
            if key in wanted:
                wanted[key] = x
            if name in _POOL_AFTER:
                x = F.max_pool2d(x, kernel_size=2, stride=2)
        return [wanted[k] for k in keys]


def _key_index(key: str) -> int:
    name = f"conv{key[1]}_{key[2]}"
    for idx, (n, _, _) in enumerate(_LAYERS):
        if n == name:
            return idx
    raise KeyError(f"unknown VGG19 feature {key!r} (expected r11..r54)")
