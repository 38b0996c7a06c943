"""`gray`: the floor of every leaderboard, the GT luminance with zero chroma.

Any model that uses its reference at all should beat it; a model that does not is broken or
colourises worse than doing nothing. Output = Lab(L, a=0, b=0) converted to sRGB.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from vcbench.baselines.base import Colorizer
from vcbench.lab import lab_to_rgb_uint8


class Gray(Colorizer):
    """Zero chroma: each frame's own L with a = b = 0, rendered as neutral sRGB."""

    name = "gray"
    description = "zero chroma (GT L with a=b=0): the floor"
    uses_reference = False
    batch_size = 16

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)  # no options: nothing to tune

    def start_clip(self, references: Sequence[np.ndarray]) -> None:
        """Nothing to prepare: the output depends on the luminance alone."""

    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        L = luminance.to(self.device, torch.float32)
        rgb = lab_to_rgb_uint8(torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], dim=1))
        # a = b = 0 is neutral grey in exact arithmetic, but the float32 XYZ->sRGB matrix leaves
        # ~1e-6 imbalance between channels that truncation can turn into a one-level colour cast;
        # the floor must have exactly zero chroma, so every channel takes the green channel's
        # value (G carries most of the luminance and is the least affected by the round-off).
        return rgb[:, 1:2].expand(-1, 3, -1, -1).contiguous()
