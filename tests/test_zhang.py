"""zhang16 / zhang17: official parameter names and shapes, strict loading through the resolver,
the documented decode (softmax over 313 bins, bin-centre expectation, x110), and a real-frame run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vcbench.baselines.zhang import ECCV16Net, SIGGRAPH17Net, Zhang16, Zhang17, load_zhang_state
from vcbench.errors import WeightsError
from vcbench.lab import rgb_uint8_to_lab

# Read off richzhang/colorization colorizers/eccv16.py and siggraph17.py: (key, shape).
ECCV16_KEYS = [("model1.0.weight", (64, 1, 3, 3)), ("model1.2.weight", (64, 64, 3, 3)), ("model1.4.running_var", (64,)),
               ("model3.6.weight", (256,)), ("model5.0.weight", (512, 512, 3, 3)), ("model8.0.weight", (512, 256, 4, 4)),
               ("model8.6.weight", (313, 256, 1, 1)), ("model8.6.bias", (313,)), ("model_out.weight", (2, 313, 1, 1))]
SIGGRAPH17_KEYS = [("model1.0.weight", (64, 4, 3, 3)), ("model3.6.running_mean", (256,)),
                   ("model8up.0.weight", (512, 256, 4, 4)), ("model3short8.0.weight", (256, 256, 3, 3)),
                   ("model8.1.weight", (256, 256, 3, 3)), ("model8.5.weight", (256,)), ("model9.3.running_var", (128,)),
                   ("model10up.0.weight", (128, 128, 4, 4)), ("model1short10.0.weight", (128, 64, 3, 3)),
                   ("model10.1.weight", (128, 128, 3, 3)), ("model_class.0.weight", (529, 256, 1, 1)),
                   ("model_out.0.weight", (2, 128, 1, 1))]


# key counts from the official layer lists: ECCV16 23 convs x 2 + 7 BatchNorms x 4 + the bias-free model_out;
# SIGGRAPH17 31 convs x 2 + 9 BatchNorms x 4 (num_batches_tracked aside)
@pytest.mark.parametrize("cls,keys,n_keys", [(ECCV16Net, ECCV16_KEYS, 75), (SIGGRAPH17Net, SIGGRAPH17_KEYS, 98)])
def test_official_keys_and_shapes(cls, keys, n_keys):
    sd = cls().state_dict()
    for k, shape in keys:
        assert tuple(sd[k].shape) == shape, k
    assert "model_out.bias" not in sd
    assert sum(1 for k in sd if not k.endswith("num_batches_tracked")) == n_keys


def _random_state(cls, seed=0):
    torch.manual_seed(seed)
    net = cls()
    sd = net.state_dict()
    for k, v in sd.items():  # non-trivial BatchNorm statistics, as a trained network has
        if k.endswith("running_mean"):
            v.normal_(0, 0.5)
        elif k.endswith("running_var"):
            v.uniform_(0.5, 2.0)
    return {k: v.clone() for k, v in sd.items()}


@pytest.mark.parametrize("model_cls,net_cls,filename", [(Zhang16, ECCV16Net, "colorization_release_v2-9b330a0b.pth"),
                                                        (Zhang17, SIGGRAPH17Net, "siggraph17-df00044c.pth")])
def test_strict_load_through_the_resolver(torch_home, model_cls, net_cls, filename):
    state = _random_state(net_cls)
    # old checkpoints have no num_batches_tracked and may carry a DataParallel prefix
    torch.save({"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")},
               torch_home / "hub" / "checkpoints" / filename)
    with pytest.raises(WeightsError, match="does not match"):  # random bytes fail the hash in the name
        model_cls("cpu")
    model = model_cls("cpu", allow_unverified_weights=True, net_size=64)
    assert model.verified is False and list(model.weights_used()) == [filename]
    for k in ("model1.0.weight", "model1.4.running_var", "model_out.weight" if net_cls is ECCV16Net else "model_out.0.weight"):
        torch.testing.assert_close(model.net.state_dict()[k], state[k], rtol=0, atol=0)
    bad = dict(state)
    bad.pop("model1.0.bias")
    with pytest.raises(WeightsError, match="missing 1 keys"):
        load_zhang_state(net_cls(), bad, torch_home / filename, model_cls.name)


def test_missing_weights_error_names_file_and_command(torch_home):
    with pytest.raises(WeightsError, match="siggraph17-df00044c.pth.*vcbench weights download zhang17"):
        Zhang17("cpu")


def test_eccv16_decodes_the_313_bin_expectation():
    net = ECCV16Net().eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
    rng = np.random.default_rng(0)
    centres = torch.from_numpy(rng.uniform(-1, 1, (2, 313))).float()
    net.model_out.weight.data = centres[:, :, None, None]
    l = torch.rand(2, 1, 32, 40) * 100
    with torch.no_grad():
        logits = net.logits(l)
        p = torch.softmax(logits, 1)
        expected = torch.einsum("cb,nbhw->nchw", centres, p)
        expected = torch.nn.functional.interpolate(expected, scale_factor=4, mode="bilinear", align_corners=False) * 110
        torch.testing.assert_close(net(l), expected, atol=1e-4, rtol=1e-4)
        # the input normalisation: L = 50 is a zero input, so conv1 sees only its bias
        h = {}
        net.model1[0].register_forward_hook(lambda m, i, o: h.update(inp=i[0]))  # returns None: output kept
        net(torch.full((1, 1, 16, 16), 50.0))
        assert h["inp"].abs().max() == 0
    assert logits.shape == (2, 313, 8, 10)


def test_siggraph17_without_hints_feeds_zero_ab_and_mask():
    net = SIGGRAPH17Net().eval()
    l = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        out = net(l)
        same = net(l, torch.zeros(1, 2, 32, 32), torch.zeros(1, 1, 32, 32))
        hinted = net(l, torch.full((1, 2, 32, 32), 40.0), torch.ones(1, 1, 32, 32))
    torch.testing.assert_close(out, same)
    assert (hinted - out).abs().max() > 1e-3
    assert out.shape == (1, 2, 32, 32) and out.abs().max() <= 110


@pytest.mark.parametrize("model_cls,net_cls,filename", [(Zhang16, ECCV16Net, "colorization_release_v2-9b330a0b.pth"),
                                                        (Zhang17, SIGGRAPH17Net, "siggraph17-df00044c.pth")])
def test_real_frames_keep_their_l(torch_home, model_cls, net_cls, filename):
    from vcbench.frames import Clip, sample_videos

    torch.save(_random_state(net_cls, 1), torch_home / "hub" / "checkpoints" / filename)
    model = model_cls("cpu", allow_unverified_weights=True, net_size=64)
    assert model.uses_reference is False
    frames = []
    for f in Clip("carphone", sample_videos()["carphone_pristine"], "video").iter_frames():
        frames.append(f)
        if len(frames) == 2:
            break
    l = rgb_uint8_to_lab(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2))[:, :1]
    model.start_clip([])
    out = model.colorize(l)
    assert out.dtype == torch.uint8 and out.shape == (2, 3, 144, 176)
    diff = (rgb_uint8_to_lab(out)[:, :1] - l).abs()
    assert diff.mean() < 1.0
    torch.testing.assert_close(model.colorize(l), out, rtol=0, atol=0)
