"""DEVC's correspondence subnet (WarpNet): VGG features -> 64-ch maps at 1/4 -> cosine match.

Parameter names and shapes follow the official `nonlocal_net_iter_76000.pth` (module `WarpNet` of
the official code), so the released file loads with `strict=True`. The forward pass is split in two
so that the reference side (`embed`) is computed once per clip instead of once per frame, and the
matching (`correlate`) can run in row chunks: softmax is taken per query row, so chunking is exact
and bounds the (HW/16)^2 matrix that made the official code run out of memory at high resolution.
"""

from __future__ import annotations

import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

#: DEVC adds Python's float epsilon to every L2 norm before dividing (a no-op in practice).
NORM_EPS = sys.float_info.epsilon
FEATURE_CHANNELS = 64
INTER_CHANNELS = 256


def channel_normalize(x: torch.Tensor) -> torch.Tensor:
    """Divide each spatial position's feature vector by its L2 norm over channels (dim 1)."""
    return x / (torch.norm(x, 2, 1, keepdim=True) + NORM_EPS)


def _conv_block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    # reflection pad 1, 3x3 conv without padding, instance norm (no affine), PReLU
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, kernel_size=3, padding=0, stride=stride),
            nn.InstanceNorm2d(cout), nn.PReLU()]


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convs with instance norm; one PReLU shared by both activations."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.padding1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=0)
        self.bn1 = nn.InstanceNorm2d(channels)
        self.prelu = nn.PReLU()
        self.padding2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=0)
        self.bn2 = nn.InstanceNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(self.bn1(self.conv1(self.padding1(x))))
        out = self.bn2(self.conv2(self.padding2(out)))
        return self.prelu(out + x)


class WarpNet(nn.Module):
    """Maps relu2_2..relu5_2 of a frame and of the reference to matched reference colours."""

    def __init__(self) -> None:
        super().__init__()
        c = FEATURE_CHANNELS
        up = nn.Upsample(scale_factor=2)  # nearest, parameter-free; shared instance is fine
        # relu2_2 (H/2) -> H/4 by a stride-2 conv
        self.layer2_1 = nn.Sequential(*_conv_block(128, 128), *_conv_block(128, c, stride=2))
        # relu3_2 is already at H/4
        self.layer3_1 = nn.Sequential(*_conv_block(256, 128), *_conv_block(128, c))
        # relu4_2 (H/8) -> H/4
        self.layer4_1 = nn.Sequential(*_conv_block(512, 256), *_conv_block(256, c), up)
        # relu5_2 (H/16, floored) -> H/4
        self.layer5_1 = nn.Sequential(*_conv_block(512, 256), up, *_conv_block(256, c), up)
        self.layer = nn.Sequential(*(ResidualBlock(4 * c) for _ in range(3)))
        self.theta = nn.Conv2d(4 * c, INTER_CHANNELS, kernel_size=1)
        self.phi = nn.Conv2d(4 * c, INTER_CHANNELS, kernel_size=1)

    # ------------------------------------------------------------------------------ features
    def fuse(self, r22: torch.Tensor, r32: torch.Tensor, r42: torch.Tensor, r52: torch.Tensor) -> torch.Tensor:
        """Channel-normalised VGG features -> fused 256-channel map at 1/4 resolution."""
        f2, f3, f4, f5 = self.layer2_1(r22), self.layer3_1(r32), self.layer4_1(r42), self.layer5_1(r52)
        if f5.shape[2:] != f2.shape[2:]:
            # H/16 was fractional: relu5_2 lost half a row; DEVC pads one row top and bottom.
            f5 = F.pad(f5, (0, 0, 1, 1), mode="replicate")
        return self.layer(torch.cat((f2, f3, f4, f5), 1))

    @staticmethod
    def _centre_normalize(x: torch.Tensor) -> torch.Tensor:
        # (N, C, H, W) -> (N, C, HW), mean-centred over positions, unit L2 norm over channels
        x = x.flatten(2)
        x = x - x.mean(dim=-1, keepdim=True)
        return x / (torch.norm(x, 2, 1, keepdim=True) + NORM_EPS)

    def query(self, fused_frame: torch.Tensor) -> torch.Tensor:
        """Frame side of the cosine similarity: theta, centred and normalised, (N, 256, HW)."""
        return self._centre_normalize(self.theta(fused_frame))

    def key(self, fused_ref: torch.Tensor) -> torch.Tensor:
        """Reference side: phi, centred and normalised, (N, 256, HW')."""
        return self._centre_normalize(self.phi(fused_ref))

    # ------------------------------------------------------------------------------ matching
    @staticmethod
    def correlate(query: torch.Tensor, key: torch.Tensor, ref_lab_pooled: torch.Tensor, out_hw: tuple[int, int],
                  temperature: float = 1e-10, chunk: int | None = None,
                  hard: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp the reference colours onto the frame.

        `query` (N, C, HW), `key` (N or 1, C, HW'), `ref_lab_pooled` (N or 1, 3, HW') (reference Lab
        average-pooled x4, L centred). Returns the warped Lab (N, 3, h, w) and the max similarity
        (N, 1, h, w) at 1/4 resolution. Always computed in float32: at temperature 1e-10 the logits
        reach 1e10, which overflows fp16. `hard=True` gathers the colour at the argmax instead of the
        softmax-weighted sum, which is what softmax at 1e-10 computes except on exact ties.
        """
        n = query.shape[0]
        q = query.float().transpose(1, 2)  # (N, HW, C)
        k = key.float()
        colours = ref_lab_pooled.float().transpose(1, 2)  # (N, HW', 3)
        if k.shape[0] != n:
            k = k.expand(n, -1, -1)
            colours = colours.expand(n, -1, -1)
        hw = q.shape[1]
        step = hw if not chunk else max(1, int(chunk))
        warped, sims = [], []
        for s in range(0, hw, step):
            f = torch.bmm(q[:, s:s + step], k)  # (N, rows, HW') cosine similarities
            best, idx = f.max(dim=-1, keepdim=True)
            sims.append(best)
            if hard:
                warped.append(torch.gather(colours, 1, idx.expand(-1, -1, colours.shape[2])))
            else:
                warped.append(torch.bmm(torch.softmax(f / temperature, dim=-1), colours))
        lab = torch.cat(warped, 1).transpose(1, 2).reshape(n, colours.shape[2], *out_hw)
        sim = torch.cat(sims, 1).transpose(1, 2).reshape(n, 1, *out_hw)
        return lab, sim
