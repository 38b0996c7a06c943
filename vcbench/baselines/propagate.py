"""`propagate`: colour propagation by optical flow from a colour first frame.

The classic propagation baseline of video colorization (the "propagation mode" of the field, where
the reference is the clip's first frame in colour). Frame by frame, in order:

- the previous output's chroma (a, b) is warped into the current frame with the backward flow
  current -> previous, computed on the luminance channels only (what a colorizer may see), by the
  one warp of vcbench (`vcbench.flow.backward_warp`: bilinear, borders clamped);
- pixels the flow marks as occluded (Lai et al.'s forward-backward test, `vcbench.flow.occlusion_mask`,
  with the flow previous -> current as the second flow) have no trustworthy source in the previous
  frame; they are refilled from the reference by Welsh et al.'s luminance/neighbourhood matching
  (`welsh.WelshMatcher`), so disoccluded content gets plausible colours instead of smeared ones;
- the output keeps the frame's own L.

The reference acts as frame -1: when it has the frame's size (propagation mode, reference = first
GT frame) the first frame is propagated from it like any other; when it does not (exemplar mode), the
first frame is colourised entirely by Welsh matching and propagation starts from there.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from vcbench.baselines.base import Colorizer
from vcbench.baselines.reinhard import reference_lab
from vcbench.baselines.welsh import WelshMatcher
from vcbench.errors import InputError
from vcbench.flow.occlusion import occlusion_mask
from vcbench.flow.registry import get_estimator
from vcbench.flow.warp import backward_warp
from vcbench.lab import lab_to_rgb_uint8
from vcbench.weights import WeightFile


def luminance_image(L: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) L in 0..100 -> (N, 3, H, W) uint8 grey image, the input of the flow estimators."""
    return (L * 2.55).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


class Propagate(Colorizer):
    """Carry the first colour frame's chroma forward by optical flow; refill occlusions by matching."""

    name = "propagate"
    description = "flow propagation of the first colour frame, occlusions refilled by Welsh matching"
    batch_size = 8

    def __init__(self, device: str | torch.device = "cpu", *, flow: str = "dis", samples: int = 200,
                 window: int = 5, weight: float = 0.5, seed: int = 0) -> None:
        super().__init__(device, flow=str(flow), samples=int(samples), window=int(window),
                         weight=float(weight), seed=int(seed))
        self._estimator = get_estimator(self.options["flow"], self.device)
        self._matcher: WelshMatcher | None = None
        self._prev_L: torch.Tensor | None = None
        self._prev_ab: torch.Tensor | None = None
        self._ref: tuple[torch.Tensor, torch.Tensor] | None = None

    def config(self) -> dict:
        cfg = dict(self.options)
        cfg["flow"] = {"estimator": self._estimator.name, "params": dict(self._estimator.params)}
        return cfg

    def weights_used(self) -> dict[str, WeightFile]:
        return dict(self._estimator.weights_used())

    def start_clip(self, references: Sequence[np.ndarray]) -> None:
        if not references:
            raise InputError("propagate needs a colour reference frame but none was given",
                             hint="evaluate with --reference first-frame")
        o = self.options
        self._matcher = WelshMatcher(references, self.device, samples=o["samples"], window=o["window"],
                                     weight=o["weight"], seed=o["seed"])
        lab = reference_lab(references[0], self.device)
        self._ref = (lab[:, :1], lab[:, 1:])
        self._prev_L = None
        self._prev_ab = None

    def _step(self, L: torch.Tensor) -> torch.Tensor:
        """Chroma (1, 2, H, W) of one frame given the state (previous L and ab)."""
        assert self._matcher is not None and self._ref is not None
        if self._prev_L is None:
            ref_L, ref_ab = self._ref
            if ref_L.shape[-2:] != L.shape[-2:]:
                return self._matcher.match(L)
            self._prev_L, self._prev_ab = ref_L, ref_ab
        cur, prev = luminance_image(L), luminance_image(self._prev_L)
        to_prev = self._estimator(cur, prev).to(L.device, torch.float32)   # current -> previous
        to_cur = self._estimator(prev, cur).to(L.device, torch.float32)    # previous -> current
        occluded = occlusion_mask(to_prev, to_cur).to(L.device) > 0.5
        ab = backward_warp(self._prev_ab, to_prev)
        if occluded.any():
            refill = self._matcher.match(L, mask=occluded)
            ab = torch.where(occluded, refill, ab)
        return ab

    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        if self._matcher is None:
            raise RuntimeError("start_clip must be called before colorize")
        L = luminance.to(self.device, torch.float32)
        out = []
        for i in range(L.shape[0]):
            Li = L[i:i + 1]
            ab = self._step(Li)
            self._prev_L, self._prev_ab = Li, ab
            out.append(lab_to_rgb_uint8(torch.cat([Li, ab], dim=1)))
        return torch.cat(out)
