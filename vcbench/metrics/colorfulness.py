"""Colourfulness (Hasler & Suesstrunk 2003), reported beside the GT's own value (the suite's GT twin).

A colourisation can be too grey or too garish, so the metric ranks by closeness to the GT's
colourfulness, |log(pred / GT)|, rather than by a direction. The paper's definition on RGB 0..255:
rg = R - G, yb = (R + G) / 2 - B (signed; some published code wrongly takes abs()), and
M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2) with population standard deviations.
"""

from __future__ import annotations

import math

import torch

from vcbench.metrics.base import FrameMetric
from vcbench.metrics.sizing import frame_chunks


def colorfulness_frames(frames: torch.Tensor) -> torch.Tensor:
    """Per-frame colourfulness of uint8 RGB (N,3,H,W), float64.

    rg = R - G and 2 yb = R + G - 2B are integers, so their sums and sums of squares are exact in
    int64 and the population variance n * sum(x^2) - sum(x)^2 is an exact integer (Python ints):
    the textbook value correctly rounded, with no float64 copy of the frames. A few frames per
    reduction (memory bounded by `frame_chunks`, not by the batch): one op per chunk rather than per
    frame, since each small op with torch's threads on a loaded shared CPU waits on its slowest thread.
    """
    out: list[float] = []
    n_frames, n = frames.shape[0], frames.shape[-2] * frames.shape[-1]
    for c in frame_chunks(n_frames, 16 * n, frames.device):  # two int32 planes and their squares
        x = frames[c].to(torch.int32)
        r, g, b = x[:, 0], x[:, 1], x[:, 2]
        rg = r - g
        yb2 = r + g - 2 * b  # 2 * yb
        sums = torch.stack([rg.sum(dim=(1, 2)), rg.square().sum(dim=(1, 2)),
                            yb2.sum(dim=(1, 2)), yb2.square().sum(dim=(1, 2))], dim=1)
        for s in sums.tolist():
            var_rg = (n * s[1] - s[0] * s[0]) / (n * n)
            var_yb = (n * s[3] - s[2] * s[2]) / (4 * n * n)
            mean_rg, mean_yb = s[0] / n, s[2] / (2 * n)
            out.append(math.sqrt(var_rg + var_yb) + 0.3 * math.sqrt(mean_rg * mean_rg + mean_yb * mean_yb))
    return torch.tensor(out, dtype=torch.float64)


class Colorfulness(FrameMetric):
    """The prediction's colourfulness per frame/clip/dataset. The GT's own value beside it (the ranking
    is by closeness to it) is the suite's GT twin: this metric fed the GT (`MetricSuite.gt_twins`)."""

    name = "colorfulness"

    def frame_values(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return colorfulness_frames(pred.to(self.device))
