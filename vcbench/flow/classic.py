"""OpenCV's classical estimators on grey frames: DIS (the offline default) and Farneback.

They need no weights, so `vcbench score` works offline; they run on the CPU whatever the device.
Pairs are independent, so a batch of pairs is spread over threads (OpenCV releases the GIL), as many
as OpenCV may use (`cv2.getNumThreads()`: 1 under `executors.single_threaded`), each thread with its
own OpenCV object; every pair's flow is what one call on that pair alone gives, bit for bit.
`pair_flows` converts each frame to grey once for the forward and the backward flow of a clip.
"""

from __future__ import annotations

from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import cv2
import numpy as np
import torch

from vcbench.flow.base import FlowEstimator, check_pair

MIN_DIS_SIDE = 12

Calc = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _gray(frames: torch.Tensor) -> list[np.ndarray]:
    arr = frames.detach().to("cpu").permute(0, 2, 3, 1).contiguous().numpy()
    return [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in arr]


class _OpenCVFlow(FlowEstimator):
    """Flow of grey frame pairs by an OpenCV call, pairs spread over threads."""

    @abstractmethod
    def _calc(self) -> Calc:
        """A function (grey x, grey y) -> (h, w, 2) float32 flow with its own OpenCV state, for one thread."""

    def _prepare(self, gray: np.ndarray) -> np.ndarray:
        """A grey frame as the OpenCV call takes it (DIS pads tiny frames)."""
        return gray

    def _flows(self, xs: list[np.ndarray], ys: list[np.ndarray], h: int, w: int) -> torch.Tensor:
        """(P, 2, h, w) flows of the pairs (xs[i], ys[i]), in order, each cropped to (h, w)."""
        workers = max(1, min(cv2.getNumThreads(), len(xs)))
        bounds = [len(xs) * k // workers for k in range(workers + 1)]

        def run(k: int) -> list[np.ndarray]:
            calc = self._calc()
            return [calc(xs[i], ys[i])[:h, :w] for i in range(bounds[k], bounds[k + 1])]

        if workers == 1:
            parts = [run(0)]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="vcbench-flow") as pool:
                parts = list(pool.map(run, range(workers)))
        return torch.from_numpy(np.stack([f for part in parts for f in part])).permute(0, 3, 1, 2)

    def _flow(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h, w = a.shape[-2:]
        return self._flows([self._prepare(x) for x in _gray(a)], [self._prepare(y) for y in _gray(b)], h, w)

    def pair_flows(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As FlowEstimator.pair_flows, with each frame converted to grey once (not once per pair side)."""
        check_pair(frames, frames)
        if frames.shape[0] < 2:
            return super().pair_flows(frames)
        h, w = frames.shape[-2:]
        g = [self._prepare(x) for x in _gray(frames)]
        both = self._flows(g[:-1] + g[1:], g[1:] + g[:-1], h, w).to(frames.device, torch.float32)
        return both[:len(g) - 1], both[len(g) - 1:]


class DISFlow(_OpenCVFlow):
    """OpenCV DIS optical flow, preset MEDIUM, on grey (cv2 RGB2GRAY) frames."""

    name = "dis"

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.params = {"method": "opencv DISOpticalFlow", "preset": "MEDIUM", "input": "gray (cv2 RGB2GRAY)",
                       "opencv": cv2.__version__}

    def _calc(self) -> Calc:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda x, y: dis.calc(x, y, None)

    def _prepare(self, gray: np.ndarray) -> np.ndarray:
        # OpenCV's DIS refuses frames under 12 px on both sides (and 1-px strips): replicate-pad them
        ph, pw = max(0, MIN_DIS_SIDE - gray.shape[0]), max(0, MIN_DIS_SIDE - gray.shape[1])
        return cv2.copyMakeBorder(gray, 0, ph, 0, pw, cv2.BORDER_REPLICATE) if ph or pw else gray


class FarnebackFlow(_OpenCVFlow):
    """OpenCV Farneback (pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2, flags 0)."""

    name = "farneback"
    ARGS = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2, "flags": 0}

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.params = {"method": "opencv calcOpticalFlowFarneback", **self.ARGS, "input": "gray (cv2 RGB2GRAY)",
                       "opencv": cv2.__version__}

    def _calc(self) -> Calc:
        k = self.ARGS
        return lambda x, y: cv2.calcOpticalFlowFarneback(x, y, None, k["pyr_scale"], k["levels"], k["winsize"],
                                                         k["iterations"], k["poly_n"], k["poly_sigma"], k["flags"])
