"""Colourfulness (Hasler & Suesstrunk 2003), reported beside the GT's own value.

A colourisation can be too grey or too garish, so the metric ranks by closeness to the GT's
colourfulness, |log(pred / GT)|, rather than by a direction. The paper's definition on RGB 0..255:
rg = R - G, yb = (R + G) / 2 - B (signed; some published code wrongly takes abs()), and
M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2) with population standard deviations.
"""

from __future__ import annotations

import math

import torch

from vcbench.metrics.base import FrameContext, Metric, mean_of_clips
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


def closeness(pred_value: float | None, gt_value: float | None) -> float | None:
    """|log(pred / GT)|: 0 when the prediction is exactly as colourful as the GT; None if undefined."""
    if pred_value is None or gt_value is None or pred_value <= 0 or gt_value <= 0:
        return None
    return abs(math.log(pred_value / gt_value))


class Colorfulness(Metric):
    """The prediction's colourfulness per frame/clip/dataset; the GT's value and the ratio beside it.

    `per_clip` / `per_frame` / `compute()` are the prediction's values (what the leaderboard prints);
    `gt_per_clip`, `gt_per_frame`, `gt_compute()` the GT's; `ratio()` / `ratio_per_clip` pred / GT.
    """

    name = "colorfulness"

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.device = torch.device(device)
        self.gt_per_clip: dict[str, float | None] = {}
        self.gt_per_frame: dict[str, list[float]] = {}
        self.ratio_per_clip: dict[str, float | None] = {}
        self._gt_current: list[float] = []

    def _reset_state(self) -> None:
        self.gt_per_clip.clear()
        self.gt_per_frame.clear()
        self.ratio_per_clip.clear()
        self._gt_current = []

    def update(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext | None = None) -> None:
        both = colorfulness_frames(torch.cat([pred.to(self.device), gt.to(self.device)])).cpu().tolist()
        n = pred.shape[0]
        self._current.extend(both[:n])
        self._gt_current.extend(both[n:])

    def end_clip(self, clip: str | None = None) -> float | None:
        name = clip or self._clip_name or f"clip{len(self.per_clip):05d}"
        gt_vals = list(self._gt_current)
        self._gt_current = []
        value = super().end_clip(name)
        self.gt_per_frame[name] = gt_vals
        gt_value = self._clip_value(gt_vals)
        self.gt_per_clip[name] = gt_value
        self.ratio_per_clip[name] = (value / gt_value) if value is not None and gt_value else None
        return value

    def gt_compute(self) -> float | None:
        """The GT's dataset colourfulness (mean over clips), the reference the prediction is ranked by."""
        if self._current:
            self.end_clip()
        return mean_of_clips(self.gt_per_clip)

    def ratio(self) -> float | None:
        """Dataset value of prediction / GT colourfulness (1 is ideal)."""
        pred, gt = self.compute(), self.gt_compute()
        return pred / gt if pred is not None and gt else None

    def closeness(self) -> float | None:
        """|log(pred / GT)| of the dataset values: the ranking key (lower is better)."""
        return closeness(self.compute(), self.gt_compute())
