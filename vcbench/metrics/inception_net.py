"""pytorch-fid's FID InceptionV3 (torchvision's Inception3 with pytorch-fid's patched blocks), layer for
layer, without importing torchvision.

Why its own module: `import torchvision` imports every model family and `torchvision.ops`, which
imports `torch._dynamo`: 2.8 s of every FID process's start-up on the 2-core AMD EPYC of the
2026-12-02 measurements (1-1.7 s on the development machine before it), about the Inception's
forward on a 24-frame clip. The modules and attribute names are torchvision's, so the state-dict
keys are those of `pt_inception-2015-12-05-6726825d.pth` and the strict load refuses any other file;
the forward is the same sequence of torch operations (tests/test_inception_net.py holds it bit-equal
to pytorch-fid's blocks on the same state dict).

pytorch-fid's patches, which make it match the TF graph FID was defined on: the average-pool
branches do not count the padding (`count_include_pad=False`), and the last block pools its branch
with a max-pool instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vcbench.metrics.network import ConvBNReLU


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """Mixed_5b..5d: 1x1, 5x5, double 3x3 and average-pool branches."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBNReLU(cin, 64, kernel_size=1)
        self.branch5x5_1 = ConvBNReLU(cin, 48, kernel_size=1)
        self.branch5x5_2 = ConvBNReLU(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = ConvBNReLU(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = ConvBNReLU(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = ConvBNReLU(96, 96, kernel_size=3, padding=1)
        self.branch_pool = ConvBNReLU(cin, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x),
                          self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Mixed_6a: the grid reduction 35x35 -> 17x17."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBNReLU(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = ConvBNReLU(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = ConvBNReLU(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = ConvBNReLU(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch3x3(x),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """Mixed_6b..6e: factorised 7x7 branches (1x7 and 7x1) at 17x17."""

    def __init__(self, cin: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = ConvBNReLU(cin, 192, kernel_size=1)
        self.branch7x7_1 = ConvBNReLU(cin, c7, kernel_size=1)
        self.branch7x7_2 = ConvBNReLU(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBNReLU(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBNReLU(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = ConvBNReLU(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBNReLU(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBNReLU(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBNReLU(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = ConvBNReLU(cin, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d7 = conv(d7)
        return torch.cat([self.branch1x1(x), b7, d7, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Mixed_7a: the grid reduction 17x17 -> 8x8."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBNReLU(cin, 192, kernel_size=1)
        self.branch3x3_2 = ConvBNReLU(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = ConvBNReLU(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = ConvBNReLU(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBNReLU(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBNReLU(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = conv(b7)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """Mixed_7b/7c: expanded 3x3 branches (1x3 and 3x1 side by side) at 8x8; `max_pool` selects
    pytorch-fid's FIDInceptionE_2 (Mixed_7c), whose pool branch max-pools."""

    def __init__(self, cin: int, *, max_pool: bool = False) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBNReLU(cin, 320, kernel_size=1)
        self.branch3x3_1 = ConvBNReLU(cin, 384, kernel_size=1)
        self.branch3x3_2a = ConvBNReLU(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBNReLU(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBNReLU(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = ConvBNReLU(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = ConvBNReLU(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBNReLU(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = ConvBNReLU(cin, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d3 = torch.cat([self.branch3x3dbl_3a(d3), self.branch3x3dbl_3b(d3)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, d3, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """The whole network as its weight file stores it (including the 1008-class `fc`, which FID does
    not use but the strict load expects); `trunk()` is the part FID runs, up to pool3."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBNReLU(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = ConvBNReLU(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = ConvBNReLU(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = ConvBNReLU(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = ConvBNReLU(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def trunk(self) -> nn.Sequential:
        """pytorch_fid.inception.InceptionV3's blocks 0..3 in order: input -> pool3 (N, 2048, 1, 1)."""
        return nn.Sequential(
            self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            self.Conv2d_3b_1x1, self.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
            self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c,
            nn.AdaptiveAvgPool2d(output_size=(1, 1)))
