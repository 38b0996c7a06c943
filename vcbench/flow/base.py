"""What every flow estimator offers, and the input checks and padding they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from vcbench.weights import WeightFile


class FlowEstimator(ABC):
    """Dense flow from frame a to frame b for batches of uint8 RGB frames (N, 3, H, W).

    `name` and `params` go into the protocol record: warp error and flicker are comparable only
    under the same estimator and parameters. `weights_used()` gives {file name: WeightFile}.
    `precomputed`: the flow is read from files by clip and frame index (`PrecomputedFlow.pairs`), not
    computed from frames; `flow_pairs` and the GT cache branch on it.
    """

    name: str = ""
    precomputed: ClassVar[bool] = False

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.params: dict[str, Any] = {}

    def weights_used(self) -> dict[str, WeightFile]:
        return {}

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(N, 2, H, W) float32 flow (u, v) in pixels such that a(x) ~ b(x + flow(x)); on a's device."""
        check_pair(a, b)
        if a.shape[0] == 0:
            return torch.zeros((0, 2, *a.shape[-2:]), dtype=torch.float32, device=a.device)
        return self._flow(a, b).to(a.device, torch.float32)

    def pair_flows(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward (t -> t+1) and backward (t+1 -> t) flow (P, 2, H, W) of the P = N-1 consecutive pairs
        of `frames` (N, 3, H, W) uint8: what one call `self(cat[a, b], cat[b, a])` gives (networks see
        one larger batch). Estimators that can share work between a clip's pairs override it."""
        p = max(frames.shape[0] - 1, 0)
        a, b = frames[:p], frames[1:]
        both = self(torch.cat([a, b]), torch.cat([b, a]))
        return both[:p], both[p:]

    @abstractmethod
    def _flow(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Flow for a non-empty checked batch."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={str(self.device)!r}, params={self.params!r})"


def check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.dtype != torch.uint8 or b.dtype != torch.uint8:
        raise TypeError(f"flow estimators take uint8 RGB frames, got {a.dtype} and {b.dtype}")
    if a.dim() != 4 or a.shape[1] != 3 or a.shape != b.shape:
        raise ValueError(f"frames must both be (N, 3, H, W) of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def pad_to_multiple(x: torch.Tensor, multiple: int, min_size: int = 0) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Replicate-pad (N, C, H, W) on both sides to the next multiple (RAFT's and ptlflow's InputPadder),
    and to at least `min_size` per side. Returns the padded tensor and (left, right, top, bottom) for `unpad`.
    """
    h, w = x.shape[-2:]
    ph = max(h + (-h) % multiple, min_size + (-min_size) % multiple) - h
    pw = max(w + (-w) % multiple, min_size + (-min_size) % multiple) - w
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    if ph == 0 and pw == 0:
        return x, pads
    return F.pad(x, pads, mode="replicate"), pads


def unpad(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    return x[..., top:h - bottom, left:w - right]
