"""Metric networks in inference form: the same function as the network they came from."""

from __future__ import annotations

import pytest
import torch

from vcbench.metrics.network import CPU_CHUNK, as_input, chunk_size, fold_batchnorm, inference_form


def _inception_block_with_statistics(seed: int) -> torch.nn.Module:
    """pytorch-fid's FIDInceptionA (BasicConv2d branches, avg-pool branch) with non-trivial BN state."""
    from pytorch_fid.inception import FIDInceptionA

    torch.manual_seed(seed)
    block = FIDInceptionA(16, pool_features=8)
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.2, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)
    return block.eval()


def test_folded_block_computes_the_same_function():
    block = _inception_block_with_statistics(0)
    x = torch.randn(3, 16, 23, 29)
    with torch.no_grad():
        want = block(x)
        n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in block.modules())
        folded = fold_batchnorm(block)
        assert n_bn == 7 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        got = folded(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert want.abs().max() > 0.5  # a non-trivial output, not zeros on both sides


def test_inference_form_on_cpu_is_channels_last_and_equal():
    block = _inception_block_with_statistics(1)
    x = torch.randn(2, 16, 17, 19)
    with torch.no_grad():
        want = block(x)
        net = inference_form(block, torch.device("cpu"))
        xin = as_input(x)
        assert xin.is_contiguous(memory_format=torch.channels_last)
        got = net(xin)
    assert all(not p.requires_grad for p in net.parameters())
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_fold_refuses_a_training_network():
    block = _inception_block_with_statistics(2).train()
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(block)


def test_chunk_size_caps_cpu_batches_only():
    assert chunk_size(torch.device("cpu"), 32) == CPU_CHUNK
    assert chunk_size(torch.device("cpu"), 3) == 3
    assert chunk_size(torch.device("cuda"), 32) == 32


def test_build_loaded_equals_a_normal_load_and_keeps_float32():
    from torchvision.models import alexnet

    from vcbench.weights import build_loaded

    torch.manual_seed(3)
    state = alexnet(weights=None).state_dict()
    normal = alexnet(weights=None)
    normal.load_state_dict(state)
    half = {k: v.half() for k, v in state.items()}  # a float16 file still gives the float32 network
    for sd in (state, half):
        net = build_loaded(lambda: alexnet(weights=None), sd)
        for (k, a), b in zip(net.state_dict().items(), normal.state_dict().values()):
            assert a.dtype == torch.float32 and not a.is_meta, k
            torch.testing.assert_close(a, b, rtol=0, atol=0 if sd is state else 2e-3)


def test_build_loaded_refuses_missing_and_misshapen_keys():
    from torchvision.models import alexnet

    from vcbench.weights import build_loaded

    state = alexnet(weights=None).state_dict()
    missing = {k: v for k, v in state.items() if not k.startswith("classifier.6")}
    with pytest.raises(RuntimeError, match="classifier.6"):
        build_loaded(lambda: alexnet(weights=None), missing)
    state["features.0.weight"] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(RuntimeError, match="size mismatch"):
        build_loaded(lambda: alexnet(weights=None), state)


def test_load_network_names_a_file_that_is_not_the_network(torch_home):
    from torchvision.models import alexnet, vgg19

    from vcbench.errors import WeightsError
    from vcbench.metrics.network import load_network
    from vcbench.weights import build_loaded

    wrong = torch_home / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    wrong.parent.mkdir(parents=True, exist_ok=True)
    torch.save(alexnet(weights=None).state_dict(), wrong)  # an AlexNet under VGG19's name
    with pytest.raises(WeightsError, match="not a torchvision VGG19 state dict") as err:
        load_network("vgg19", lambda sd: build_loaded(lambda: vgg19(weights=None), sd), torch.device("cpu"),
                     what="a torchvision VGG19", allow_unverified=True)
    assert "vgg19-dcbb9e9d.pth" in str(err.value) and "vcbench weights download vgg19" in str(err.value)


def test_forward_in_chunks_equals_one_forward():
    from vcbench.metrics.network import forward_in_chunks

    block = inference_form(_inception_block_with_statistics(4), torch.device("cpu"))
    frames = torch.randint(0, 256, (19, 16, 9, 11), dtype=torch.uint8)
    prepare = lambda x: x.float() / 255.0  # noqa: E731
    got = forward_in_chunks(block, frames, torch.device("cpu"), 32, prepare, 0)  # chunks of CPU_CHUNK
    with torch.no_grad():
        want = block(prepare(frames)).flatten(1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert forward_in_chunks(block, frames[:0], torch.device("cpu"), 8, prepare, 7).shape == (0, 7)
