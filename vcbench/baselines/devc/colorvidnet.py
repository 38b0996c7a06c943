"""DEVC's colorization subnet (ColorVidNet), with the parameter names of `colornet_iter_76000.pth`.

A U-Net-like encoder-decoder over 7 input channels: the frame's L (centred), the warped reference
ab, the matching confidence and the previous output's Lab. Normalisation is InstanceNorm without
affine parameters, and every downsampling is a depthwise 1x1 stride-2 conv (`*_ss`); the decoder
upsamples with nearest x2 + 3x3 conv. The output is tanh * 128, i.e. raw ab.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv(cin: int, cout: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, dilation, dilation)


def _up_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, cout))


def _subsample(channels: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 1, 2, bias=False, groups=channels)


class ColorVidNet(nn.Module):
    def __init__(self, in_channels: int = 7) -> None:
        super().__init__()
        self.conv1_1 = nn.Sequential(_conv(in_channels, 32), nn.ReLU(), _conv(32, 64))
        self.conv1_2 = _conv(64, 64)
        self.conv1_2norm_ss = _subsample(64)
        self.conv2_1 = _conv(64, 128)
        self.conv2_2 = _conv(128, 128)
        self.conv2_2norm_ss = _subsample(128)
        self.conv3_1 = _conv(128, 256)
        self.conv3_2 = _conv(256, 256)
        self.conv3_3 = _conv(256, 256)
        self.conv3_3norm_ss = _subsample(256)
        self.conv4_1 = _conv(256, 512)
        self.conv4_2 = _conv(512, 512)
        self.conv4_3 = _conv(512, 512)
        self.conv5_1 = _conv(512, 512, 2)
        self.conv5_2 = _conv(512, 512, 2)
        self.conv5_3 = _conv(512, 512, 2)
        self.conv6_1 = _conv(512, 512, 2)
        self.conv6_2 = _conv(512, 512, 2)
        self.conv6_3 = _conv(512, 512, 2)
        self.conv7_1 = _conv(512, 512)
        self.conv7_2 = _conv(512, 512)
        self.conv7_3 = _conv(512, 512)
        self.conv8_1 = _up_conv(512, 256)
        self.conv3_3_short = _conv(256, 256)
        self.conv8_2 = _conv(256, 256)
        self.conv8_3 = _conv(256, 256)
        self.conv9_1 = _up_conv(256, 128)
        self.conv2_2_short = _conv(128, 128)
        self.conv9_2 = _conv(128, 128)
        self.conv10_1 = _up_conv(128, 128)
        self.conv1_2_short = _conv(64, 128)
        self.conv10_2 = _conv(128, 128)
        self.conv10_ab = nn.Conv2d(128, 2, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu, norm = F.relu, F.instance_norm
        c1 = norm(relu(self.conv1_2(relu(self.conv1_1(x)))))
        c2 = norm(relu(self.conv2_2(relu(self.conv2_1(self.conv1_2norm_ss(c1))))))
        c3 = norm(relu(self.conv3_3(relu(self.conv3_2(relu(self.conv3_1(self.conv2_2norm_ss(c2))))))))
        c4 = norm(relu(self.conv4_3(relu(self.conv4_2(relu(self.conv4_1(self.conv3_3norm_ss(c3))))))))
        c5 = norm(relu(self.conv5_3(relu(self.conv5_2(relu(self.conv5_1(c4)))))))
        c6 = norm(relu(self.conv6_3(relu(self.conv6_2(relu(self.conv6_1(c5)))))))
        c7 = norm(relu(self.conv7_3(relu(self.conv7_2(relu(self.conv7_1(c6)))))))
        c8 = relu(self.conv8_1(c7) + self.conv3_3_short(c3))
        c8 = norm(relu(self.conv8_3(relu(self.conv8_2(c8)))))
        c9 = relu(self.conv9_1(c8) + self.conv2_2_short(c2))
        c9 = norm(relu(self.conv9_2(c9)))
        c10 = relu(self.conv10_1(c9) + self.conv1_2_short(c1))
        c10 = F.leaky_relu(self.conv10_2(c10), 0.2)
        return torch.tanh(self.conv10_ab(c10)) * 128.0
