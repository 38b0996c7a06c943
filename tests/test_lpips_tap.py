"""LPIPS's per-layer term in vcbench's merged form against lpips' normalise/subtract/square/conv/mean."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vcbench.metrics.perceptual import _EPS, _tap_distance


def _package_form(xa, xb, lin):
    """lpips 0.1.4's normalize_tensor, squared difference, NetLinLayer (1x1 conv) and spatial_average."""
    fa = xa / (torch.sqrt(torch.sum(xa ** 2, dim=1, keepdim=True)) + _EPS)
    fb = xb / (torch.sqrt(torch.sum(xb ** 2, dim=1, keepdim=True)) + _EPS)
    return F.conv2d((fa - fb) ** 2, lin).mean(dim=(2, 3)).view(-1)


def test_tap_term_matches_the_package_form_and_is_zero_on_equal_inputs():
    g = torch.Generator().manual_seed(0)
    xa = torch.relu(torch.randn(3, 64, 29, 41, generator=g)).contiguous(memory_format=torch.channels_last)
    xb = torch.relu(xa + 0.3 * torch.randn(xa.shape, generator=g))
    xb[0, :, :4] = 0  # all-zero feature columns: the eps keeps them finite, as in lpips
    lin = torch.rand(1, 64, 1, 1, generator=g)
    want = _package_form(xa, xb, lin)
    for layout in (torch.channels_last, torch.contiguous_format):  # the CPU's and CUDA's
        got = _tap_distance(torch.cat([xa, xb]).contiguous(memory_format=layout), 3, lin)
        assert got.shape == (3,)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
        same = torch.cat([xa, xa]).contiguous(memory_format=layout)
        assert torch.equal(_tap_distance(same, 3, lin), torch.zeros(3))
