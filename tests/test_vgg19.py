"""top1/top5's VGG19 and its input transforms, built without torchvision, are torchvision's.

Same state dict, same real frames (several sizes and orientations, uint8 as the scorer passes them):
`classification.VGG19` must give the very same logits as `torchvision.models.vgg19`, raw and in
inference form, and `imagenet_eval_input` the very same tensor as
`VGG19_Weights.IMAGENET1K_V1.transforms()`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_same_network

from vcbench.metrics.classification import VGG19, imagenet_eval_input
from vcbench.weights import build_loaded


def _u8(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def batches(sample_frames) -> list[torch.Tensor]:
    import cv2

    bikes = sample_frames["bikes"][:2]
    bunny = sample_frames["bigbuckbunny"][:2]
    wide = np.stack([cv2.resize(f, (854, 480), interpolation=cv2.INTER_AREA) for f in bunny])
    tall = np.ascontiguousarray(wide[:, :, :300].transpose(0, 2, 1, 3))  # portrait 300x480 (w < h)
    square = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in bikes])  # no resize
    odd = np.stack([cv2.resize(f, (333, 227), interpolation=cv2.INTER_AREA) for f in bikes])  # odd crop offsets
    return [_u8(b) for b in (bikes, wide, tall, square, odd)]


def test_input_transform_is_torchvisions(batches):
    from torchvision.models import VGG19_Weights

    want_t = VGG19_Weights.IMAGENET1K_V1.transforms()
    for x in batches:
        got, want = imagenet_eval_input(x), want_t(x)
        assert got.shape == want.shape == (x.shape[0], 3, 224, 224) and torch.equal(got, want), tuple(x.shape)
        cl = x.contiguous(memory_format=torch.channels_last)  # the layout the CPU scorer may hand over
        assert torch.equal(imagenet_eval_input(cl), want)
    f = batches[3].float()  # float input: torchvision neither rounds nor divides by 255
    before = f.clone()
    assert torch.equal(imagenet_eval_input(f), want_t(f)) and torch.equal(f, before)  # the input is not touched


def test_vgg19_is_torchvisions(batches):
    from torchvision.models import vgg19

    torch.manual_seed(0)
    state = vgg19(weights=None).state_dict()
    ref = vgg19(weights=None)
    ref.load_state_dict(state)
    ref.eval()
    mine = build_loaded(VGG19, state).eval()
    x = imagenet_eval_input(batches[1])
    want, _ = assert_same_network(mine, ref, x)
    assert want.shape == (2, 1000) and want.std() > 0
    with pytest.raises(RuntimeError, match="Missing key|Unexpected key"):
        build_loaded(VGG19, {k: v for k, v in state.items() if k != "classifier.6.bias"})
