"""DEVC (Zhang et al., "Deep Exemplar-based Video Colorization", CVPR 2019): a port that loads the
official checkpoint files strictly and reproduces the official `test.py` (see `inference`)."""

from __future__ import annotations

import typing
from dataclasses import asdict
from typing import Sequence

import numpy as np
import torch

from vcbench.baselines.base import Colorizer
from vcbench.baselines.devc.inference import DEVCEngine, DEVCNet, DEVCOptions, official_colorize
from vcbench.baselines.checkpoints import load_strict
from vcbench.baselines.devc.weights import (COLORNET_FILE, STRICT_HINT, VGG_FILE, WARPNET_FILE, DEVCWeights,
                                            load_devc_weights)
from vcbench.errors import InputError
from vcbench.weights import WeightFile

__all__ = ["DEVC", "DEVCNet", "DEVCOptions", "DEVCEngine", "build_devc_net", "official_colorize"]

_OPTION_KEYS = {f for f in DEVCOptions.__dataclass_fields__ if f != "smoother"}
_LOADER_KEYS = {"weights", "allow_unverified_weights", "download", "quiet"}
#: Types of DEVC's `**options` (`vcbench evaluate` checks `--model-option` values against them).
_OPTION_TYPES = {**{k: v for k, v in typing.get_type_hints(DEVCOptions).items() if k in _OPTION_KEYS},
                 "weights": str, "allow_unverified_weights": bool, "download": bool, "quiet": bool}


def build_devc_net(weights: DEVCWeights, device: str | torch.device = "cpu") -> DEVCNet:
    """The three networks with the official state dicts loaded strictly, in eval mode."""
    net = DEVCNet()
    load_strict(net.warpnet, weights.warpnet, WARPNET_FILE, weights.source, model="DEVC", hint=STRICT_HINT)
    load_strict(net.colornet, weights.colornet, COLORNET_FILE, weights.source, model="DEVC", hint=STRICT_HINT)
    load_strict(net.vgg, weights.vgg, VGG_FILE, weights.source, model="DEVC", hint=STRICT_HINT)
    return net.eval().requires_grad_(False).to(device)


class DEVC(Colorizer):
    """Deep Exemplar-based Video Colorization (CVPR 2019) with the official weights.

    Options are `DEVCOptions` fields (geometry, propagate, precision, ...) plus the loader's (weights,
    allow_unverified_weights, download, quiet). In Python the geometry defaults to "official" (the
    official `test.py`: 432x768 CenterPad frames in, 432x768 out); `vcbench evaluate` runs the
    "leaderboard" geometry (any input size, output at the GT's size) unless told otherwise, and
    propagation mode with `--reference first-frame`.
    """

    name = "devc"
    description = "Deep Exemplar-based Video Colorization (Zhang et al. CVPR 2019), official checkpoints"
    weights = ("devc",)
    uses_reference = True
    batch_size = 8
    supports_propagation = True
    evaluate_defaults = {"geometry": "leaderboard"}
    option_types = _OPTION_TYPES

    def __init__(self, device: str | torch.device = "cpu", **options) -> None:
        super().__init__(device, **options)
        unknown = set(options) - _OPTION_KEYS - _LOADER_KEYS
        if unknown:
            raise InputError(f"unknown DEVC option(s): {', '.join(sorted(unknown))}",
                             hint=f"valid: {', '.join(sorted(_OPTION_KEYS | _LOADER_KEYS))}")
        self.devc_options = DEVCOptions(**{k: v for k, v in options.items() if k in _OPTION_KEYS}).check()
        if self.devc_options.precision != "fp32" and self.device.type != "cuda":
            raise InputError(f"precision {self.devc_options.precision} needs a CUDA device",
                             hint="use --device cuda, or precision fp32 on the CPU")
        w = load_devc_weights(options.get("weights"), download=options.get("download", True),
                              allow_unverified=bool(options.get("allow_unverified_weights", False)),
                              quiet=bool(options.get("quiet", False)))
        # Unverified files (a folder of .pth files: no hash covers it) mark, or refuse, the run.
        self._used = {f: WeightFile(sha, w.verified) for f, sha in w.sha256.items()}
        self.net = build_devc_net(w, self.device)
        del w
        self.engine = DEVCEngine(self.net, self.devc_options)

    def start_clip(self, references: Sequence[np.ndarray]) -> None:
        if not references:
            raise InputError("DEVC needs a reference image but none was given",
                             hint="evaluate with --reference first-frame or --reference exemplar")
        ref = np.asarray(references[0])
        if ref.dtype != np.uint8 or ref.ndim != 3 or ref.shape[2] != 3:
            raise InputError(f"reference must be an RGB uint8 (H, W, 3) image, got {ref.shape} {ref.dtype}")
        self.engine.start([ref])

    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        if luminance.dim() != 4 or luminance.shape[1] != 1:
            raise InputError(f"expected (N, 1, H, W) luminance, got {tuple(luminance.shape)}")
        return self.engine.colorize(luminance.unsqueeze(0))[0]

    def weights_used(self) -> dict[str, WeightFile]:
        return dict(self._used)

    def config(self) -> dict:
        """Options that change the output (the correlation's chunk size only bounds memory)."""
        cfg = asdict(self.devc_options)
        cfg.pop("corr_chunk_mb", None)
        return cfg
