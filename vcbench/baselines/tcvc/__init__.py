"""`tcvc`: Temporally Consistent Video Colorization (Liu, Zhao, Chan, Wang, Loy, Qiao & Dong, 2021).

Inference as the official `test_TCVC_onesampling.py` / `_noGT.py` (`interval_length = 17`,
`GT_size = 256`): the clip's L, normalised to (L - 50) / 100, is resized to 256x256 with
`F.interpolate(mode="bilinear")` (align_corners=False, no anti-aliasing; the aspect ratio is not
kept); the clip is cut into segments between anchors every 18th frame (`networks.segments`), each
colorized by TCVC_IDC (`networks.TCVCNet`): the anchors by SIGGRAPH17, the frames between them from
features propagated from both anchors along FlowNet2 flow. The predicted ab (x110) is upsampled
bilinearly to the frame's size, joined with the frame's full-resolution L, converted to RGB,
clipped and rounded to uint8 (`tensor2img`'s `round()`). Automatic: references are not used.

The network looks ahead to the next anchor, so the whole clip arrives in one `colorize` call
(`batch_size`); memory at 256x256 is about 34 MB of propagated features per frame of a segment.
`interval` and `net_size` (a multiple of 64, FlowNet2's) are options and part of the run identity.
The official script returns nothing for a one-frame clip; here that frame is colorized as an anchor.
Weights: `files.py` (80000_G.pth, a user's copy; strict load, sha256 recorded). CPU and CUDA run the
same code; on CUDA cuDNN may pick non-deterministic or TF32 kernels, on the CPU output is repeatable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vcbench.baselines.base import Colorizer
from vcbench.baselines.checkpoints import check_state, strip_module_prefix
from vcbench.baselines.tcvc.files import HOW, WEIGHTS_NAME, load_tcvc_state
from vcbench.baselines.tcvc.flownet2 import MULTIPLE
from vcbench.baselines.tcvc.networks import INTERVAL, NET_SIZE, TCVCNet, anchor_frames, segments
from vcbench.errors import InputError
from vcbench.lab import lab_to_rgb
from vcbench.weights import WeightFile, build_loaded

L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0
#: Frames converted back to full-resolution RGB at a time (bounds memory at 1080p).
OUTPUT_CHUNK = 8

__all__ = ["TCVC", "TCVCNet", "anchor_frames", "segments", "load_tcvc_net"]


def load_tcvc_net(state: dict[str, torch.Tensor], source: Path) -> TCVCNet:
    """TCVCNet built on the meta device and given `state` strictly (`vcbench.weights.build_loaded`:
    assigned, not copied; the checkpoint is ~790 MB, mostly FlowNet2); a mismatch is one WeightsError
    naming the keys, found on the meta-device network before anything is assigned."""
    state = strip_module_prefix(state)

    def build() -> TCVCNet:
        net = TCVCNet()
        check_state(net, state, source.name, source, model="TCVC_IDC", hint=HOW)
        return net

    return build_loaded(build, state)


class TCVC(Colorizer):
    """TCVC with its published TCVC_IDC checkpoint; references are not used."""

    name = "tcvc"
    description = ("Temporally Consistent Video Colorization (Liu et al. 2021): SIGGRAPH17 anchors every 18th "
                   "frame, bidirectional FlowNet2 feature propagation")
    weights = (WEIGHTS_NAME,)
    uses_reference = False
    #: The whole clip arrives in one `colorize` call: a frame's colours depend on the next anchor.
    batch_size = 1 << 30

    def __init__(self, device: str | torch.device = "cpu", *, weights: str | Path | None = None,
                 allow_unverified_weights: bool = False, quiet: bool = False, interval: int = INTERVAL,
                 net_size: int = NET_SIZE) -> None:
        interval, net_size = int(interval), int(net_size)
        if interval < 0:
            raise InputError(f"tcvc interval must be >= 0 frames between anchors, got {interval}")
        if net_size < MULTIPLE or net_size % MULTIPLE:
            raise InputError(f"tcvc net_size must be a multiple of {MULTIPLE} (FlowNet2), got {net_size}")
        super().__init__(device, interval=interval, net_size=net_size)
        state, sha, verified, source = load_tcvc_state(weights, allow_unverified=allow_unverified_weights, quiet=quiet)
        self._used = {f: WeightFile(d, verified) for f, d in sha.items()}
        self.net = load_tcvc_net(state, source).eval().requires_grad_(False).to(self.device)
        self._done = False

    def start_clip(self, references: Sequence[np.ndarray]) -> None:
        """Automatic colorization: references are not used; the next call starts a new clip."""
        self._done = False

    def weights_used(self) -> dict[str, WeightFile]:
        return dict(self._used)

    @torch.inference_mode()
    def predict_ab(self, luminance: torch.Tensor) -> torch.Tensor:
        """The network's ab / 110 (N, 2, S, S) for a whole clip's L (N, 1, H, W) in 0..100."""
        s = self.options["net_size"]
        x = F.interpolate(luminance.to(self.device, torch.float32), size=(s, s), mode="bilinear", align_corners=False)
        return self.net.clip((x - L_CENT) / L_NORM, self.options["interval"])

    @torch.inference_mode()
    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        if luminance.dim() != 4 or luminance.shape[1] != 1 or luminance.shape[0] < 1:
            raise InputError(f"expected (N, 1, H, W) luminance with N >= 1, got {tuple(luminance.shape)}")
        if self._done:
            raise InputError("tcvc colorizes a whole clip at once (a frame depends on the next anchor): pass all "
                             "of a clip's frames in one colorize call (the harness does so)")
        self._done = True
        L = luminance.to(self.device, torch.float32)
        ab = self.predict_ab(L)
        h, w = L.shape[2:]
        out = []
        for i in range(0, L.shape[0], OUTPUT_CHUNK):
            up = F.interpolate(ab[i:i + OUTPUT_CHUNK], size=(h, w), mode="bilinear", align_corners=False) * AB_NORM
            rgb = lab_to_rgb(torch.cat((L[i:i + OUTPUT_CHUNK], up), 1))
            out.append(torch.round(rgb * 255.0).to(torch.uint8))
        return torch.cat(out)

    def config(self) -> dict:
        return dict(self.options)
