"""The colorization model interface that `vcbench evaluate` drives.

A model colorizes one clip at a time, frame by frame in order, and may keep state between frames
(DEVC feeds back its previous output). It receives the GT's L channel (float32, 0..100, sRGB/D65 Lab)
at the GT's resolution and one or more RGB uint8 reference images, and returns RGB uint8 at the same
resolution. The scorer scores exactly what the model returned.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch

from vcbench.weights import WeightFile, unverified


class Colorizer(ABC):
    """Base class for every registered model (baselines, DEVC, image colorizers, plug-ins)."""

    #: Registry name, e.g. "reinhard"; used by `vcbench evaluate --model NAME`.
    name: ClassVar[str]
    #: One-line description shown by `vcbench models list`.
    description: ClassVar[str] = ""
    #: What a leaderboard row cites (built-ins have theirs in `vcbench.citations.CITATIONS`).
    citation: ClassVar[str] = ""
    #: Names of weight files (keys of `vcbench.weights.REGISTRY`) the model needs; empty = none.
    weights: ClassVar[tuple[str, ...]] = ()
    #: Whether the model uses the reference image(s) (False for automatic image colorizers).
    uses_reference: ClassVar[bool] = True
    #: Preferred number of frames per `colorize` call (the harness batches up to this; None: the
    #: scorer's batch for the frame size).
    batch_size: ClassVar[int | None] = 8
    #: Whether the model has a propagation mode: the reference is the clip's first frame in colour
    #: and seeds the model's recurrent state. Such a model takes a `propagate: bool` constructor
    #: option, which `vcbench evaluate --reference first-frame` sets to True (`--reference exemplar`:
    #: False) unless the user gave `--model-option propagate=...`.
    supports_propagation: ClassVar[bool] = False
    #: Constructor options `vcbench evaluate` uses unless the user sets them (`--model-option`). They
    #: let the harness run a model in its leaderboard configuration while the Python class keeps the
    #: defaults of the original code (DEVC: geometry "leaderboard" here, "official" in Python).
    evaluate_defaults: ClassVar[Mapping[str, Any]] = {}
    #: {option: type} of options a model taking `**options` accepts (checked and coerced by the
    #: harness beside the constructor's annotated parameters).
    option_types: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, device: str | torch.device = "cpu", **options) -> None:
        self.device = torch.device(device)
        self.options = options

    @abstractmethod
    def start_clip(self, references: Sequence[np.ndarray]) -> None:
        """Begin a new clip; `references` are RGB uint8 (H, W, 3) images. Resets recurrent state."""

    @abstractmethod
    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        """Colorize the next consecutive frames of the clip.

        `luminance`: (N, 1, H, W) float32 L in 0..100 on `self.device`.
        Returns (N, 3, H, W) uint8 RGB on any device.
        """

    def weights_used(self) -> dict[str, WeightFile]:
        """Every weight file loaded: {file name: WeightFile(sha256, verified)}; a run records their
        sha256 (`weights.digests`) and is marked or refused for the unverified ones."""
        return {}

    @property
    def unverified_weights(self) -> list[str]:
        """Files of `weights_used()` that are not verified (`weights.unverified`)."""
        return unverified(self.weights_used())

    @property
    def verified(self) -> bool:
        """False once the model used a weight file that is not verified."""
        return not self.unverified_weights

    def config(self) -> dict:
        """Options that change the output; recorded with each run and part of its identity."""
        return dict(self.options)
