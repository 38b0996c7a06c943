"""`lai18`: Learning Blind Video Temporal Consistency (Lai et al., ECCV 2018), as a wrapper.

A recurrent network turns a per-frame processed video into a temporally consistent one, given the
original (here: grey) video. Port of `networks/TransformNet.py` and `networks/ConvLSTM.py` of
phoenix104104/fast_blind_video_consistency with their parameter names, loaded strictly from the
published `ECCV18_blind_consistency.pth` (`{"model": state_dict, ...}`) through vcbench.weights.
The official download link (vllab.ucmerced.edu) is dead and no hash was published: a user's copy is
accepted by path (`--model-option lai18.weights=PATH`, Python `Lai18(base, weights=PATH)`) or from
`$TORCH_HOME/hub/checkpoints/ECCV18_blind_consistency.pth`; its sha256 is recorded with the run.

Network (train.py defaults nf=32, blocks=5, norm=IN; read off the checkpoint's shapes): two
encoders, conv 7x7 + conv 3x3 stride 2, one fed (P_t, O_{t-1}) and one (I_t, I_{t-1}); their
concatenation through a stride-2 conv, `blocks` residual blocks and a ConvLSTM (3x3 gates, order
input, remember, output, cell); two nearest-x2 upsampling convs with skips from the first encoder;
a 7x7 conv and tanh. All convolutions pad by reflection; leaky ReLU 0.2. The official layers build
InstanceNorm modules (their running statistics are in the checkpoint) but never apply them
(`if self.norm in ["BN" or "IN"]` tests for "BN" only): neither does this port.

Inference as `test_pretrained.py`: frame 0's output is the processed frame itself; for t >= 1 the
four RGB frames in [0, 1] (processed P_t, previous output O_{t-1} as saved, i.e. uint8, inputs I_t
and I_{t-1}) are resized with OpenCV's bilinear `cv2.resize` to H and W rounded up to multiples of
4, O_t = P_t + net(...), resized back to the input size, clipped, x255 truncated. The official
script re-reads O_{t-1} from the JPEG it wrote; here O_{t-1} is the uint8 frame returned (the one
scored), without JPEG re-compression. The input video I is the grey rendering of the GT L.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vcbench import weights as registry
from vcbench.baselines.wrappers import Wrapper
from vcbench.baselines.zhang import load_zhang_state
from vcbench.errors import WeightsError
from vcbench.lab import lab_to_rgb_uint8

WEIGHTS_NAME = "lai18"
SIZE_MULTIPLE = 4


class ConvLayer(nn.Module):
    """Reflection pad + conv; `norm` builds (but, as the official code, never applies) a norm layer."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, norm: str | None = None, bias: bool = True) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel, stride, bias=bias)
        if norm == "BN":
            self.norm_layer = nn.BatchNorm2d(cout)
        elif norm == "IN":
            self.norm_layer = nn.InstanceNorm2d(cout, track_running_stats=True)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2d(self.reflection_pad(x))
        if self.norm == "BN":  # the official test `self.norm in ["BN" or "IN"]` is true for BN only
            out = self.norm_layer(out)
        return out


class UpsampleConvLayer(ConvLayer):
    """Nearest x2 upsampling, then `ConvLayer`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResidualBlock(nn.Module):
    def __init__(self, ch: int, norm: str | None, bias: bool) -> None:
        super().__init__()
        self.conv1 = ConvLayer(ch, ch, 3, 1, norm, bias)
        self.conv2 = ConvLayer(ch, ch, 3, 1, norm, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.leaky_relu(self.conv1(x), 0.2)) + x


class ConvLSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.Gates = nn.Conv2d(input_size + hidden_size, 4 * hidden_size, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, prev: tuple[torch.Tensor, torch.Tensor] | None):
        if prev is None:
            z = x.new_zeros(x.shape[0], self.hidden_size, *x.shape[2:])
            prev = (z, z)
        hidden, cell = prev
        i, r, o, g = self.Gates(torch.cat([x, hidden], 1)).chunk(4, 1)
        cell = torch.sigmoid(r) * cell + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(cell), cell


class TransformNet(nn.Module):
    """ECCV18 TransformNet: input (N, 12, H, W) = (P_t, O_{t-1}, I_t, I_{t-1}); H, W multiples of 4."""

    def __init__(self, nf: int = 32, blocks: int = 5, norm: str | None = "IN", nc_out: int = 3) -> None:
        super().__init__()
        bias = norm == "IN"
        self.conv1a = ConvLayer(6, nf, 7, 1, norm, bias)
        self.conv1b = ConvLayer(6, nf, 7, 1, norm, bias)
        self.conv2a = ConvLayer(nf, nf * 2, 3, 2, norm, bias)
        self.conv2b = ConvLayer(nf, nf * 2, 3, 2, norm, bias)
        self.conv3 = ConvLayer(nf * 4, nf * 4, 3, 2, norm, bias)
        self.ResBlocks = nn.ModuleList([ResidualBlock(nf * 4, norm, bias) for _ in range(blocks)])
        self.convlstm = ConvLSTM(nf * 4, nf * 4, 3)
        self.deconv1 = UpsampleConvLayer(nf * 4, nf * 2, 3, 1, norm, bias)
        self.deconv2 = UpsampleConvLayer(nf * 4, nf, 3, 1, norm, bias)
        self.deconv3 = ConvLayer(nf * 2, nc_out, 7, 1)

    def forward(self, x: torch.Tensor, state=None):
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        e1a, e1b = act(self.conv1a(x[:, :6])), act(self.conv1b(x[:, 6:]))
        e2a, e2b = act(self.conv2a(e1a)), act(self.conv2b(e1b))
        h = act(self.conv3(torch.cat([e2a, e2b], 1)))
        for block in self.ResBlocks:
            h = block(h)
        state = self.convlstm(h, state)
        d2 = act(self.deconv1(state[0]))
        d1 = act(self.deconv2(torch.cat([d2, e2a], 1)))
        return torch.tanh(self.deconv3(torch.cat([d1, e1a], 1))), state


def arch_from_state(state: dict[str, torch.Tensor]) -> tuple[int, int, str | None]:
    """(nf, blocks, norm) of a TransformNet checkpoint (its opts pickle is not read: it is code)."""
    w = state.get("conv1a.conv2d.weight")
    if w is None or w.dim() != 4:
        raise WeightsError("not an ECCV18 TransformNet state dict (no conv1a.conv2d.weight)")
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"ResBlocks\.(\d+)\.", k))}
    if "conv1a.norm_layer.weight" in state:
        norm: str | None = "BN"
    elif "conv1a.norm_layer.running_mean" in state:
        norm = "IN"
    else:
        norm = None
    return int(w.shape[0]), len(blocks), norm


def load_transformnet(path: Path) -> TransformNet:
    """Build the network the checkpoint describes and load it strictly (weights_only)."""
    obj = registry.load_state_dict(path)
    state = obj["model"] if isinstance(obj.get("model"), dict) else obj
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError("the checkpoint's model entry is not a state dict of tensors", path=path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        nf, blocks, norm = arch_from_state(state)
    except WeightsError as exc:
        raise WeightsError(str(exc).rstrip("."), path=path) from exc
    net = TransformNet(nf, blocks, norm)
    load_zhang_state(net, state, Path(path), WEIGHTS_NAME)
    return net


def _cv2_resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """OpenCV bilinear resize of (N, C, H, W) float32 (as test_pretrained.py), identity at equal size."""
    if tuple(x.shape[2:]) == (h, w):
        return x
    import cv2

    arr = x.permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([cv2.resize(np.ascontiguousarray(a), (w, h), interpolation=cv2.INTER_LINEAR) for a in arr])
    out = out[..., None] if out.ndim == 3 else out
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device)


class Lai18(Wrapper):
    """Lai et al. ECCV 2018 blind video temporal consistency on the base model's frames."""

    wrapper_name = "lai18"
    description = "blind video temporal consistency, TransformNet + ConvLSTM (Lai et al. ECCV 2018)"
    weights = (WEIGHTS_NAME,)

    def __init__(self, base, device: str | torch.device | None = None, *, weights: str | Path | None = None,
                 allow_unverified_weights: bool = False, quiet: bool = False) -> None:
        super().__init__(base, device)
        # No working URL: never try to download; a missing file is one clear line.
        resolved = registry.resolve(WEIGHTS_NAME, weights, download=False,
                                    allow_unverified=bool(allow_unverified_weights), quiet=quiet)
        self._own_weights = resolved.used()
        self.net = load_transformnet(resolved.path).eval().requires_grad_(False).to(self.device)
        self.batch_size = int(getattr(base, "batch_size", 8))
        self.start_clip_own(())

    def own_config(self) -> dict:
        return {"size_multiple": SIZE_MULTIPLE}

    def start_clip_own(self, references: Sequence[np.ndarray]) -> None:
        self._prev_in: torch.Tensor | None = None
        self._prev_out: torch.Tensor | None = None
        self._state = None

    @torch.no_grad()
    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        L = luminance.to(self.device, torch.float32)
        processed = self.base_frames(L)
        gray = lab_to_rgb_uint8(torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], 1))
        h, w = L.shape[2:]
        hs, ws = -(-h // SIZE_MULTIPLE) * SIZE_MULTIPLE, -(-w // SIZE_MULTIPLE) * SIZE_MULTIPLE
        outs = []
        for t in range(L.shape[0]):
            p, i = processed[t:t + 1], gray[t:t + 1]
            if self._prev_out is None:
                out = p
            else:
                frames = [x.float() / 255.0 for x in (p, self._prev_out, i, self._prev_in)]
                frames = [_cv2_resize(x, hs, ws) for x in frames]
                res, self._state = self.net(torch.cat(frames, 1), self._state)
                o = _cv2_resize(frames[0] + res, h, w)
                out = (o.clamp(0, 1) * 255.0).to(torch.uint8)
            self._prev_in, self._prev_out = i, out
            outs.append(out)
        return torch.cat(outs)
