"""vcbench's FID Inception (`metrics.inception_net`, built without torchvision) is pytorch-fid's network.

The reference is pytorch-fid's own architecture: torchvision's Inception3 with pytorch-fid's patched
blocks (FIDInceptionA/C/E_1/E_2) swapped in, as `pytorch_fid.inception.fid_inception_v3` builds it
(that function downloads its weights, so the same construction is done here without them), run as
`pytorch_fid.inception.InceptionV3` runs it (blocks 0..3 up to pool3). Same state dict, same real
frames: the outputs must be the very same tensors, raw and in inference form.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_network, pytorch_fid_inception3

from vcbench.metrics.inception import build_fid_inception
from vcbench.random_weights import fid_inception_state


def _pytorch_fid_trunk(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    net = pytorch_fid_inception3()
    net.load_state_dict(state, strict=True)
    pool = torch.nn.MaxPool2d(kernel_size=3, stride=2)
    return torch.nn.Sequential(  # pytorch_fid.inception.InceptionV3.blocks[0..3]
        net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, pool, net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, pool,
        net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
        net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, torch.nn.AdaptiveAvgPool2d((1, 1))).eval()


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    """Random weights with non-trivial BatchNorm statistics, so that folding them is exercised."""
    s = fid_inception_state(seed=5)
    g = torch.Generator().manual_seed(6)
    for k in s:
        if k.endswith(("running_mean", "bn.bias")):
            s[k] = torch.randn(s[k].shape, generator=g) * 0.1
        elif k.endswith(("running_var", "bn.weight")):
            s[k] = torch.rand(s[k].shape, generator=g) + 0.5
    return s


@pytest.fixture(scope="module")
def frames(sample_frames) -> torch.Tensor:
    """Three real frames of two videos, pytorch-fid's input (299x299, in [-1, 1])."""
    clips = (sample_frames["bikes"][:2], sample_frames["bigbuckbunny"][:1])
    x = [torch.from_numpy(np.ascontiguousarray(f)).permute(0, 3, 1, 2).float() / 255.0 for f in clips]
    return torch.cat([F.interpolate(f, size=(299, 299), mode="bilinear", align_corners=False) for f in x]) * 2 - 1


def test_state_dict_layout_is_pytorch_fids(state):
    ref = _pytorch_fid_trunk(state)
    mine = build_fid_inception(state)
    want = {k: v.shape for k, v in ref.state_dict().items()}
    assert {k: v.shape for k, v in mine.state_dict().items()} == want and len(want) > 500
    with pytest.raises(RuntimeError, match="Missing key|Unexpected key"):  # the strict load still refuses
        build_fid_inception({k: v for k, v in state.items() if k != "Mixed_6b.branch7x7_2.conv.weight"})


def test_forward_is_bit_equal_to_pytorch_fids_blocks(state, frames):
    ref, mine = _pytorch_fid_trunk(state), build_fid_inception(state)
    want, got_f = assert_same_network(mine, ref, frames)
    assert want.shape == (3, 2048, 1, 1) and want.abs().max() > 0.1
    torch.testing.assert_close(got_f, want, rtol=1e-4, atol=1e-5)  # folding only moves float rounding
