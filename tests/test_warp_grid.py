"""sampling_grid, computed in place in the grid, is bit-equal to the textbook normalisation."""

from __future__ import annotations

import pytest
import torch

from vcbench.flow.warp import sampling_grid


def _textbook(flow: torch.Tensor) -> torch.Tensor:
    n, _, h, w = flow.shape
    x = torch.arange(w, dtype=flow.dtype).view(1, 1, w) + flow[:, 0]
    y = torch.arange(h, dtype=flow.dtype).view(1, h, 1) + flow[:, 1]
    return torch.stack((x * (2.0 / max(w - 1, 1)) - 1.0, y * (2.0 / max(h - 1, 1)) - 1.0), dim=-1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(3, 2, 37, 53), (1, 2, 1, 9), (2, 2, 6, 1)])
def test_grid_is_bit_equal_to_the_textbook_form(dtype, shape):
    g = torch.Generator().manual_seed(0)
    flow = (torch.randn(shape, generator=g, dtype=torch.float64) * 7).to(dtype)
    got = sampling_grid(flow)
    assert got.dtype == dtype and got.shape == (shape[0], shape[2], shape[3], 2)
    assert torch.equal(got, _textbook(flow))

