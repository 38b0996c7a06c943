"""conv+ReLU fused into one oneDNN call (`network.fuse_conv_relu`): bit-equal to the unfused network.

Each network is put in inference form twice, once as vcbench runs it and once with the fused op
reported missing (the unfused form: BatchNorm folded, channels-last, separate ReLU passes), and both
run on the same real frames: the outputs must be the very same tensors (torch.equal), on two threads
and on one (where aten hands 1x1 convolutions to its native kernel, which the fused module follows).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import degrade

from test_lpips import alex_home, alex_state_file  # noqa: F401  (fixtures: a random AlexNet in TORCH_HOME)

from vcbench.metrics import network
from vcbench.metrics.network import ConvReLU, as_input, inference_form


def _t(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()


def _both_forms(net: torch.nn.Module, monkeypatch) -> tuple[torch.nn.Module, torch.nn.Module]:
    fused = inference_form(copy.deepcopy(net), torch.device("cpu"))
    with monkeypatch.context() as m:
        m.setattr(network, "_pointwise_op", lambda: None)  # a torch without the op: plain modules
        plain = inference_form(copy.deepcopy(net), torch.device("cpu"))
    assert not any(isinstance(mod, ConvReLU) for mod in plain.modules())
    return fused, plain


@pytest.fixture(params=[2, 1], ids=["2threads", "1thread"])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _frames(sample_frames, size: tuple[int, int]) -> torch.Tensor:
    """Three real frames of two videos at `size`, as float32 in [-1, 1]."""
    import torch.nn.functional as F

    clips = (sample_frames["bikes"][:2], sample_frames["bigbuckbunny"][:1])
    x = torch.cat([F.interpolate(_t(f).float(), size=size, mode="bilinear", align_corners=False) for f in clips])
    return x / 127.5 - 1.0


def test_fused_inception_is_bit_equal(sample_frames, monkeypatch, threads):
    from test_fid import _random_fid_inception_state

    from vcbench.metrics.inception import build_fid_inception

    net = build_fid_inception(_random_fid_inception_state())
    fused, plain = _both_forms(net, monkeypatch)
    assert sum(isinstance(m, ConvReLU) for m in fused.modules()) == 94  # every BasicConv2d
    x = as_input(_frames(sample_frames, (299, 299)))
    with torch.inference_mode():
        for batch in (x, x[:1]):  # a single frame takes aten's small-input rule for more layers
            got, want = fused(batch), plain(batch)
            assert torch.equal(got, want)
    assert want.abs().max() > 0.1


def test_fused_lpips_trunk_and_vgg19_are_bit_equal(sample_frames, monkeypatch, threads):
    from torchvision.models import alexnet, vgg19

    torch.manual_seed(0)
    trunk = alexnet(weights=None).features
    fused, plain = _both_forms(trunk, monkeypatch)
    assert sum(isinstance(m, ConvReLU) for m in fused.modules()) == 5
    assert [type(m).__name__ for m in fused][:3] == ["ConvReLU", "Identity", "MaxPool2d"]  # indices kept
    x = x_f = as_input(_frames(sample_frames, (120, 216)))
    with torch.inference_mode():
        for i in range(len(fused)):  # after every ReLU and pool, so at LPIPS's taps too
            x_f, x = fused[i](x_f), plain[i](x)
            if not isinstance(plain[i], torch.nn.Conv2d):
                assert torch.equal(x_f, x), i
    vgg = vgg19(weights=None).eval()
    fused, plain = _both_forms(vgg, monkeypatch)
    assert sum(isinstance(m, ConvReLU) for m in fused.modules()) == 16
    x = as_input(_frames(sample_frames, (64, 64)))
    with torch.inference_mode():
        assert torch.equal(fused(x), plain(x))


def test_fused_lpips_distances_are_bit_equal(alex_home, sample_frames, monkeypatch, threads):
    from vcbench.metrics.perceptual import LPIPS

    gt = sample_frames["bikes"][:3, ::2, ::2]
    pred = degrade(gt, "blur+hue", seed=3)
    fused = LPIPS(allow_unverified=True)
    with monkeypatch.context() as m:
        m.setattr(network, "_pointwise_op", lambda: None)
        plain = LPIPS(allow_unverified=True)
    assert any(isinstance(mod, ConvReLU) for mod in fused.net.modules())
    got, want = fused.distances(_t(pred), _t(gt)), plain.distances(_t(pred), _t(gt))
    assert torch.equal(got, want) and (want > 1e-3).all()


def test_conv_relu_falls_back_off_its_fast_path():
    """Input the fused op is not for (contiguous NCHW, float64) goes through conv then ReLU."""
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    fused = ConvReLU(conv)
    x = torch.randn(2, 4, 9, 11)
    with torch.inference_mode():
        assert torch.equal(fused(x), torch.relu(conv(x)))
        conv64 = copy.deepcopy(conv).double()
        assert torch.equal(ConvReLU(conv64)(x.double()), torch.relu(conv64(x.double())))
