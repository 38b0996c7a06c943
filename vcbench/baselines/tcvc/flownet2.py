"""FlowNet2 as NVIDIA's flownet2-pytorch builds it (the copy inside lyh-18/TCVC), in plain PyTorch.

TCVC's checkpoint holds this network under `flow.`; the module names below are NVIDIA's
(`flownetc.conv3_1.0.weight`, `flownets_d.inter_conv5.0.weight`, ...), so it loads strictly.
`FlowNet2(img1, img2)` returns the flow (pixels, full resolution) that backward-warps img2 onto
img1's grid, as NVIDIA's forward computes it:

- inputs (N, 3, H, W) each, H and W multiples of 64; one mean per channel over both images
  (NVIDIA's `rgb_mean`), rgb_max 1;
- FlowNetC's correlation (21x21 displacements, step 2, divided by C) is
  `vcbench.flow.correlation.flownetc_correlation`, and the `Resample2d` CUDA op is
  `vcbench.flow.warp.backward_warp` (the same bilinear sampling with neighbours clamped to the
  border; tests/test_tcvc.py checks it against the kernel's formula); `ChannelNorm` is the L2 norm
  over channels;
- NVIDIA's quirks are kept: FlowNetS-2's flow is upsampled x4 nearest, FlowNetSD's flow is
  *divided* by div_flow (20) and upsampled nearest, FlowNetC's and FlowNetS-1's are multiplied by 20
  and upsampled bilinearly (align_corners=False).

ptlflow's FlowNet2 (`vcbench.flow.flownet2`, the scorer's estimator) has the same parameter names
but not this forward: it subtracts each image's own mean, upsamples every sub-network's flow
bilinearly and zeroes samples that fall outside the frame, so it cannot stand in here.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vcbench.flow.correlation import flownetc_correlation
from vcbench.flow.warp import backward_warp

DIV_FLOW = 20.0
MULTIPLE = 64


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2), nn.LeakyReLU(0.1))


def _deconv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.1))


def _predict(cin: int) -> nn.Conv2d:
    return nn.Conv2d(cin, 2, 3, 1, 1)


class _FlowNetBase(nn.Module):
    """What FlowNetC, FlowNetS and FlowNetSD share: conv4 .. conv6_1, then coarse to fine from the
    1/64 features to the 1/4 flow, each level concatenating the encoder skip, the deconvolved features and
    the upsampled flow (FlowNetSD passes the concatenation through an `inter_conv` first)."""

    def _make_decoder(self, predict_in: tuple[int, ...], flow_up_bias: bool = True, inter: bool = False) -> None:
        self.deconv5, self.deconv4 = _deconv(1024, 512), _deconv(1026, 256)
        self.deconv3, self.deconv2 = _deconv(770, 128), _deconv(386, 64)
        if inter:
            self.inter_conv5 = nn.Sequential(nn.Conv2d(1026, 512, 3, 1, 1))
            self.inter_conv4 = nn.Sequential(nn.Conv2d(770, 256, 3, 1, 1))
            self.inter_conv3 = nn.Sequential(nn.Conv2d(386, 128, 3, 1, 1))
            self.inter_conv2 = nn.Sequential(nn.Conv2d(194, 64, 3, 1, 1))
        for level, cin in zip((6, 5, 4, 3, 2), predict_in):
            setattr(self, f"predict_flow{level}", _predict(cin))
        for a, b in ((6, 5), (5, 4), (4, 3), (3, 2)):
            setattr(self, f"upsampled_flow{a}_to_{b}", nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=flow_up_bias))
        self._inter = inter

    def _finish(self, c3: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        """conv4 .. conv6_1 on the 1/8 features c3, then the decoder; returns the 1/4 flow (flow2)."""
        c4 = self.conv4_1(self.conv4(c3))
        c5 = self.conv5_1(self.conv5(c4))
        c6 = self.conv6_1(self.conv6(c5))
        features = c6
        flow = self.predict_flow6(c6)
        skips = (c5, c4, c3, c2)  # the encoder outputs at 1/32, 1/16, 1/8, 1/4
        for level, skip in zip((5, 4, 3, 2), skips):
            up = getattr(self, f"upsampled_flow{level + 1}_to_{level}")(flow)
            deconv = getattr(self, f"deconv{level}")(features)
            features = torch.cat((skip, deconv, up), 1)
            head = getattr(self, f"inter_conv{level}")(features) if self._inter else features
            flow = getattr(self, f"predict_flow{level}")(head)
        return flow


class FlowNetC(_FlowNetBase):
    """Correlation FlowNet: x (N, 6, H, W), the two images stacked; returns flow2 (1/4 resolution)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.conv3 = _conv(3, 64, 7, 2), _conv(64, 128, 5, 2), _conv(128, 256, 5, 2)
        self.conv_redir = _conv(256, 32, 1)
        self.conv3_1 = _conv(473, 256)
        self.conv4, self.conv4_1 = _conv(256, 512, stride=2), _conv(512, 512)
        self.conv5, self.conv5_1 = _conv(512, 512, stride=2), _conv(512, 512)
        self.conv6, self.conv6_1 = _conv(512, 1024, stride=2), _conv(1024, 1024)
        self._make_decoder((1024, 1026, 770, 386, 194))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        c2 = self.conv2(self.conv1(torch.cat((x[:, :3], x[:, 3:]), 0)))  # both streams share weights
        c3 = self.conv3(c2)
        corr = F.leaky_relu(flownetc_correlation(c3[:n], c3[n:]), 0.1)
        return self._finish(self.conv3_1(torch.cat((self.conv_redir(c3[:n]), corr), 1)), c2[:n])


class FlowNetS(_FlowNetBase):
    """Simple FlowNet on 12 channels (images, warped image, flow, brightness error); returns flow2."""

    def __init__(self, input_channels: int = 12) -> None:
        super().__init__()
        self.conv1, self.conv2 = _conv(input_channels, 64, 7, 2), _conv(64, 128, 5, 2)
        self.conv3, self.conv3_1 = _conv(128, 256, 5, 2), _conv(256, 256)
        self.conv4, self.conv4_1 = _conv(256, 512, stride=2), _conv(512, 512)
        self.conv5, self.conv5_1 = _conv(512, 512, stride=2), _conv(512, 512)
        self.conv6, self.conv6_1 = _conv(512, 1024, stride=2), _conv(1024, 1024)
        self._make_decoder((1024, 1026, 770, 386, 194), flow_up_bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c2 = self.conv2(self.conv1(x))
        return self._finish(self.conv3_1(self.conv3(c2)), c2)


class FlowNetSD(_FlowNetBase):
    """FlowNet for small displacements on the two images (6 channels); returns flow2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = _conv(6, 64)
        self.conv1, self.conv1_1 = _conv(64, 64, stride=2), _conv(64, 128)
        self.conv2, self.conv2_1 = _conv(128, 128, stride=2), _conv(128, 128)
        self.conv3, self.conv3_1 = _conv(128, 256, stride=2), _conv(256, 256)
        self.conv4, self.conv4_1 = _conv(256, 512, stride=2), _conv(512, 512)
        self.conv5, self.conv5_1 = _conv(512, 512, stride=2), _conv(512, 512)
        self.conv6, self.conv6_1 = _conv(512, 1024, stride=2), _conv(1024, 1024)
        self._make_decoder((1024, 512, 256, 128, 64), inter=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.conv1_1(self.conv1(self.conv0(x)))
        c2 = self.conv2_1(self.conv2(c1))
        return self._finish(self.conv3_1(self.conv3(c2)), c2)


class FlowNetFusion(nn.Module):
    """Fuses FlowNetSD's and FlowNetS-2's flows at full resolution (11 input channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = _conv(11, 64)
        self.conv1, self.conv1_1 = _conv(64, 64, stride=2), _conv(64, 128)
        self.conv2, self.conv2_1 = _conv(128, 128, stride=2), _conv(128, 128)
        self.deconv1, self.deconv0 = _deconv(128, 32), _deconv(162, 16)
        self.inter_conv1 = nn.Sequential(nn.Conv2d(162, 32, 3, 1, 1))
        self.inter_conv0 = nn.Sequential(nn.Conv2d(82, 16, 3, 1, 1))
        self.predict_flow2, self.predict_flow1, self.predict_flow0 = _predict(128), _predict(32), _predict(16)
        self.upsampled_flow2_to_1 = nn.ConvTranspose2d(2, 2, 4, 2, 1)
        self.upsampled_flow1_to_0 = nn.ConvTranspose2d(2, 2, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c0 = self.conv0(x)
        c1 = self.conv1_1(self.conv1(c0))
        c2 = self.conv2_1(self.conv2(c1))
        flow2 = self.predict_flow2(c2)
        cat1 = torch.cat((c1, self.deconv1(c2), self.upsampled_flow2_to_1(flow2)), 1)
        flow1 = self.predict_flow1(self.inter_conv1(cat1))
        cat0 = torch.cat((c0, self.deconv0(cat1), self.upsampled_flow1_to_0(flow1)), 1)
        return self.predict_flow0(self.inter_conv0(cat0))


def channel_norm(x: torch.Tensor) -> torch.Tensor:
    """NVIDIA's ChannelNorm (norm_deg 2): sqrt of the sum of squares over channels, (N, 1, H, W)."""
    return torch.linalg.vector_norm(x, dim=1, keepdim=True)


def _up(flow: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "nearest":
        return F.interpolate(flow, scale_factor=4, mode="nearest")
    return F.interpolate(flow, scale_factor=4, mode="bilinear", align_corners=False)


class FlowNet2(nn.Module):
    """FlowNet2 (C, S, S, SD, fusion) with NVIDIA's names; no parameters outside the sub-networks."""

    def __init__(self) -> None:
        super().__init__()
        self.flownetc = FlowNetC()
        self.flownets_1 = FlowNetS()
        self.flownets_2 = FlowNetS()
        self.flownets_d = FlowNetSD()
        self.flownetfusion = FlowNetFusion()

    def _refined(self, net: FlowNetS, x: torch.Tensor, flow: torch.Tensor, mode: str) -> torch.Tensor:
        """One FlowNetS stage: img1, img2, img2 warped by `flow`, flow / 20, brightness error."""
        x1, warped = x[:, :3], backward_warp(x[:, 3:], flow)
        return _up(net(torch.cat((x, warped, flow / DIV_FLOW, channel_norm(x1 - warped)), 1)) * DIV_FLOW, mode)

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        n, c, h, w = img1.shape
        if h % MULTIPLE or w % MULTIPLE:
            raise ValueError(f"FlowNet2 needs H and W multiples of {MULTIPLE}, got {h}x{w}")
        pair = torch.stack((img1, img2), 2)                         # (N, 3, 2, H, W), as NVIDIA stacks them
        pair = pair - pair.reshape(n, c, -1).mean(-1).view(n, c, 1, 1, 1)
        x = torch.cat((pair[:, :, 0], pair[:, :, 1]), 1)
        x1, x2 = x[:, :3], x[:, 3:]
        flow_c = _up(self.flownetc(x) * DIV_FLOW, "bilinear")
        flow_s1 = self._refined(self.flownets_1, x, flow_c, "bilinear")
        flow_s2 = self._refined(self.flownets_2, x, flow_s1, "nearest")
        flow_sd = _up(self.flownets_d(x) / DIV_FLOW, "nearest")
        err_s2 = channel_norm(x1 - backward_warp(x2, flow_s2))
        err_sd = channel_norm(x1 - backward_warp(x2, flow_sd))
        return self.flownetfusion(torch.cat((x1, flow_sd, flow_s2, channel_norm(flow_sd), channel_norm(flow_s2),
                                             err_sd, err_s2), 1))
