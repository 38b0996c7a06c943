"""OpenCV's classical estimators on grey frames: DIS (the offline default) and Farneback.

They need no weights, so `vcbench score` works offline; they run on the CPU whatever the device,
one pair at a time (OpenCV parallelises inside each call).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vcbench.flow.base import FlowEstimator

MIN_DIS_SIDE = 12


def _gray(frames: torch.Tensor) -> list[np.ndarray]:
    arr = frames.detach().to("cpu").permute(0, 2, 3, 1).contiguous().numpy()
    return [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in arr]


class DISFlow(FlowEstimator):
    """OpenCV DIS optical flow, preset MEDIUM, on grey (cv2 RGB2GRAY) frames."""

    name = "dis"

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.params = {"method": "opencv DISOpticalFlow", "preset": "MEDIUM", "input": "gray (cv2 RGB2GRAY)",
                       "opencv": cv2.__version__}
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def _flow(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h, w = a.shape[-2:]
        # OpenCV's DIS refuses frames under 12 px on both sides (and 1-px strips): replicate-pad them
        ph, pw = max(0, MIN_DIS_SIDE - h), max(0, MIN_DIS_SIDE - w)
        out = []
        for x, y in zip(_gray(a), _gray(b)):
            if ph or pw:
                x = cv2.copyMakeBorder(x, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
                y = cv2.copyMakeBorder(y, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
            out.append(self._dis.calc(x, y, None)[:h, :w])
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


class FarnebackFlow(FlowEstimator):
    """OpenCV Farneback (pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2, flags 0)."""

    name = "farneback"
    ARGS = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2, "flags": 0}

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.params = {"method": "opencv calcOpticalFlowFarneback", **self.ARGS, "input": "gray (cv2 RGB2GRAY)",
                       "opencv": cv2.__version__}

    def _flow(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        k = self.ARGS
        out = [cv2.calcOpticalFlowFarneback(x, y, None, k["pyr_scale"], k["levels"], k["winsize"], k["iterations"],
                                            k["poly_n"], k["poly_sigma"], k["flags"])
               for x, y in zip(_gray(a), _gray(b))]
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
