"""TCVC_IDC (lyh-18/TCVC `codes/models/archs/TCVC_IDC_arch.py`), the network of the official test
scripts, with the official parameter names so `80000_G.pth` loads strictly.

Modules: `fea_key`, the anchor-frame colorizer (SIGGRAPH 2017's generator, the IDC backbone, whose
weights are `siggraph17-df00044c.pth` frozen during training; it is vcbench's zhang17 network, here
through `instcolor.networks.ColorGenerator`, which also returns its conv10_2 features); `flow`,
NVIDIA's FlowNet2 (`flownet2.py`); `L_fea_extractor` (2 convs on L), `weigting` (sic), `feature_refine`
and `channel_reduction` (3 convs each, leaky ReLU 0.1 between them).

One segment = the frames from one anchor to the next, both included. Inputs are L normalised as
the official `rgb2lab`: (L - 50) / 100 at the network size; FlowNet2 sees L / 100 (that + 0.5)
replicated to 3 channels. Anchors: SIGGRAPH17 with zero hints and a zero mask gives ab (tanh, i.e.
ab / 110) and conv10_2 (128 channels). Backward pass: the last anchor's features are warped towards
the first, frame by frame, by FlowNet2(frame i, frame i+1). Forward pass, for each inner frame i:
the previous frame's propagated features warped by FlowNet2(frame i, frame i-1); W =
sigmoid(weigting(L features of i-1, i, i+1, backward features of i, warped forward features));
fused = W * forward + (1 - W) * backward; a residual from feature_refine(L features, the reduced
backward features of i+1, forward features of i-1 and the fused ones) is added; ab =
`fea_key.model_out` of the result. The official forward also computes warped outputs and masks for
its training losses; they do not change the colours and are not computed here.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vcbench.baselines.instcolor.networks import ColorGenerator
from vcbench.baselines.tcvc.flownet2 import FlowNet2
from vcbench.flow.warp import backward_warp

#: The official test scripts' `interval_length` (frames between two anchors) and `GT_size`.
INTERVAL = 17
NET_SIZE = 256
FEATURES = 128  # SIGGRAPH17's conv10_2


class ThreeConvs(nn.Module):
    """conv1, conv2, conv3 with leaky ReLU 0.1 after the first two (WeightingNet, Feature_Refine,
    Channel_Reduction of the official code; only their widths and kernel sizes differ)."""

    def __init__(self, cin: int, mid1: int, mid2: int, cout: int, kernels: tuple[int, int, int] = (3, 3, 3)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid1, kernels[0], padding=kernels[0] // 2)
        self.conv2 = nn.Conv2d(mid1, mid2, kernels[1], padding=kernels[1] // 2)
        self.conv3 = nn.Conv2d(mid2, cout, kernels[2], padding=kernels[2] // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), 0.1)
        return self.conv3(F.leaky_relu(self.conv2(x), 0.1))


def segments(n: int, interval: int = INTERVAL) -> list[tuple[int, int]]:
    """(first, last) frame of each segment, as `test_TCVC_onesampling.py` cuts a clip of n frames:
    anchors every interval + 1 frames from 0, a segment runs to the next anchor or the clip's last
    frame, and an anchor on the last frame opens no segment of its own."""
    if n < 1 or interval < 0:
        raise ValueError(f"need n >= 1 and interval >= 0, got n={n}, interval={interval}")
    starts = list(range(0, n, interval + 1))
    if starts[-1] == n - 1:
        starts.pop()
    return [(k, min(k + interval + 1, n - 1)) for k in starts]


def anchor_frames(n: int, interval: int = INTERVAL) -> list[int]:
    """The frames colorized by the anchor network alone (both ends of every segment). The official
    script outputs nothing for a one-frame clip; here that frame is an anchor."""
    return sorted({i for seg in segments(n, interval) for i in seg}) if n > 1 else [0]


class TCVCNet(nn.Module):
    """TCVC_IDC: anchor colorizer, FlowNet2 and the propagation/fusion/refinement networks."""

    def __init__(self) -> None:
        super().__init__()
        self.L_fea_extractor = nn.Sequential(nn.Conv2d(1, 32, 3, 1, 1), nn.LeakyReLU(0.1), nn.Conv2d(32, 32, 3, 1, 1))
        self.channel_reduction = ThreeConvs(FEATURES, 64, 64, 64, (1, 3, 1))
        self.weigting = ThreeConvs(32 * 3 + FEATURES * 2, 196, 64, 1)
        self.feature_refine = ThreeConvs(32 * 3 + 64 * 3, 196, 128, FEATURES)
        self.fea_key = ColorGenerator()
        self.flow = FlowNet2()

    def anchor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ab / 110, conv10_2 features) of normalised L frames x (N, 1, S, S), no hints."""
        ab, feats = self.fea_key.features(x, torch.zeros_like(x).expand(-1, 2, -1, -1), torch.zeros_like(x))
        return ab, feats["conv10_2"]

    def flows(self, a: torch.Tensor, b: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        """FlowNet2(a[k], b[k]) for normalised L frames, `chunk` pairs at a time."""
        out = [self.flow(a[i:i + chunk].repeat(1, 3, 1, 1) + 0.5, b[i:i + chunk].repeat(1, 3, 1, 1) + 0.5)
               for i in range(0, a.shape[0], chunk)]
        return torch.cat(out) if out else a.new_zeros((0, 2, *a.shape[2:]))

    def segment(self, x: torch.Tensor, first: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """ab / 110 (M, 2, S, S) of one segment x (M >= 2 normalised L frames) and the last anchor's
        (ab, features), which open the next segment (the official forward's `first_key_HR/_fea`)."""
        m = x.shape[0]
        if m < 2:
            raise ValueError(f"a segment has at least its two anchors, got {m} frame(s)")
        first_ab, forward = first if first is not None else self.anchor(x[:1])
        last = self.anchor(x[-1:])
        out = [first_ab]
        if m > 2:
            inner = x[1:m - 1]
            # FlowNet2(i, i+1) for the backward pass and (i, i-1) for the forward pass, in one batch.
            flow_back, flow_fwd = self.flows(torch.cat((inner, inner)), torch.cat((x[2:m], x[:m - 2]))).chunk(2)
            backward: list[torch.Tensor] = [last[1]] * m  # backward[i]: the last anchor's features at frame i
            for i in range(m - 2, 0, -1):
                backward[i] = backward_warp(backward[i + 1], flow_back[i - 1:i])
            lum = self.L_fea_extractor(x)
            for i in range(1, m - 1):
                warped = backward_warp(forward, flow_fwd[i - 1:i])
                context = torch.cat((lum[i - 1:i], lum[i:i + 1], lum[i + 1:i + 2]), 1)
                w = torch.sigmoid(self.weigting(torch.cat((context, backward[i], warped), 1)))
                fused = w * warped + (1 - w) * backward[i]
                reduced = [self.channel_reduction(f) for f in (backward[i + 1], forward, fused)]
                forward = fused + self.feature_refine(torch.cat((context, *reduced), 1))
                out.append(self.fea_key.model_out(forward))
        out.append(last[0])
        return torch.cat(out), last

    def clip(self, x: torch.Tensor, interval: int = INTERVAL) -> torch.Tensor:
        """ab / 110 (N, 2, S, S) for a whole clip of normalised L frames (N, 1, S, S)."""
        n = x.shape[0]
        if n == 1:
            return self.anchor(x)[0]
        ab = x.new_empty((n, 2, *x.shape[2:]))
        carried: tuple[int, tuple[torch.Tensor, torch.Tensor]] | None = None
        for start, end in segments(n, interval):
            first = carried[1] if carried is not None and carried[0] == start else None
            ab[start:end + 1], last = self.segment(x[start:end + 1], first)
            carried = (end, last)
        return ab
