"""Colourfulness (Hasler & Suesstrunk 2003), reported beside the GT's own value (the suite's GT twin).

A colourisation can be too grey or too garish, so the metric ranks by closeness to the GT's
colourfulness, |log(pred / GT)|, rather than by a direction. The paper's definition on RGB 0..255:
rg = R - G, yb = (R + G) / 2 - B (signed; some published code wrongly takes abs()), and
M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2) with population standard deviations.
"""

from __future__ import annotations

import torch

from vcbench.metrics.base import FrameMetric
from vcbench.metrics.colorfulness_math import colorfulness_from_sums, plane_colorfulness
from vcbench.metrics.sizing import frame_chunks


def colorfulness_frames(frames: torch.Tensor) -> torch.Tensor:
    """Per-frame colourfulness of uint8 RGB (N,3,H,W), float64.

    On the CPU each frame's planes go to `colorfulness_math.plane_colorfulness` (numpy; the torch-free
    scorer's function). Elsewhere the same exact integer sums are taken by torch on the device, a few
    frames per reduction (memory bounded by `frame_chunks`, not by the batch), and end in the same
    `colorfulness_from_sums`: the sums are exact integers either way, so the floats are the same.
    """
    if frames.device.type == "cpu":
        arr = frames.contiguous().numpy()
        return torch.tensor([plane_colorfulness(f[0], f[1], f[2]) for f in arr], dtype=torch.float64)
    out: list[float] = []
    n_frames, n = frames.shape[0], frames.shape[-2] * frames.shape[-1]
    for c in frame_chunks(n_frames, 16 * n, frames.device):  # two int32 planes and their squares
        x = frames[c].to(torch.int32)
        r, g, b = x[:, 0], x[:, 1], x[:, 2]
        rg = r - g
        yb2 = r + g - 2 * b  # 2 * yb
        sums = torch.stack([rg.sum(dim=(1, 2)), rg.square().sum(dim=(1, 2)),
                            yb2.sum(dim=(1, 2)), yb2.square().sum(dim=(1, 2))], dim=1)  # int64
        out.extend(colorfulness_from_sums(n, *s) for s in sums.tolist())
    return torch.tensor(out, dtype=torch.float64)


class Colorfulness(FrameMetric):
    """The prediction's colourfulness per frame/clip/dataset. The GT's own value beside it (the ranking
    is by closeness to it) is the suite's GT twin: this metric fed the GT (`MetricSuite.gt_twins`)."""

    name = "colorfulness"

    def frame_values(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return colorfulness_frames(pred.to(self.device))
