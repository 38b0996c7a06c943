"""lai18: the ECCV18 TransformNet with the official key names and shapes, strict loading through the
resolver from a user's copy (path or torch-hub cache), the official frame-size handling, and the
wrapper on a real clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vcbench.baselines.lai18 import Lai18, TransformNet, arch_from_state, load_transformnet
from vcbench.baselines.welsh import Welsh
from vcbench.errors import WeightsError
from vcbench.evaluate import build_model
from vcbench.lab import rgb_uint8_to_lab
from vcbench.weights import digests

FILE = "ECCV18_blind_consistency.pth"

# Read off networks/TransformNet.py and ConvLSTM.py with train.py's defaults (nf=32, blocks=5, norm=IN).
OFFICIAL_KEYS = [("conv1a.conv2d.weight", (32, 6, 7, 7)), ("conv1a.conv2d.bias", (32,)),
                 ("conv1a.norm_layer.running_mean", (32,)), ("conv1b.conv2d.weight", (32, 6, 7, 7)),
                 ("conv2a.conv2d.weight", (64, 32, 3, 3)), ("conv3.conv2d.weight", (128, 128, 3, 3)),
                 ("ResBlocks.4.conv2.conv2d.weight", (128, 128, 3, 3)), ("ResBlocks.0.conv1.norm_layer.running_var", (128,)),
                 ("convlstm.Gates.weight", (512, 256, 3, 3)), ("convlstm.Gates.bias", (512,)),
                 ("deconv1.conv2d.weight", (64, 128, 3, 3)), ("deconv2.conv2d.weight", (32, 128, 3, 3)),
                 ("deconv3.conv2d.weight", (3, 64, 7, 7)), ("deconv3.conv2d.bias", (3,))]


def official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random TransformNet state dict as PyTorch 0.4.0 saved it (no num_batches_tracked)."""
    torch.manual_seed(seed)
    sd = TransformNet().state_dict()
    return {k: v.clone() for k, v in sd.items() if not k.endswith("num_batches_tracked")}


def test_official_keys_and_shapes():
    sd = TransformNet().state_dict()
    for key, shape in OFFICIAL_KEYS:
        assert tuple(sd[key].shape) == shape, key
    assert "deconv3.norm_layer.running_mean" not in sd  # the output layer has no norm
    # 13 conv layers (5 encoder, 10 in the residual blocks, 3 decoder... ) + the LSTM gates, all with bias
    convs = [k for k in sd if k.endswith("conv2d.weight")]
    assert len(convs) == 5 + 10 + 3 and arch_from_state(sd) == (32, 5, "IN")


def _save(torch_home, state, name=FILE):
    path = torch_home / "hub" / "checkpoints" / name
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}}, path)
    return path


def test_strict_load_from_cache_and_path_records_sha256(torch_home, tmp_path):
    state = official_state()
    _save(torch_home, state)
    model = Lai18(Welsh(samples=30))
    (name, digest), = [(k, v) for k, v in digests(model.weights_used()).items() if k == FILE]
    from vcbench.weights import sha256_file

    assert digest == sha256_file(torch_home / "hub" / "checkpoints" / FILE)
    assert torch.equal(model.net.convlstm.Gates.weight, state["convlstm.Gates.weight"])
    # a user's copy elsewhere, by path (through the registry's option routing too)
    other = tmp_path / "mine.pth"
    torch.save({"model": official_state(1)}, other)
    m2 = build_model("welsh+lai18", torch.device("cpu"), {"lai18.weights": str(other)})
    assert m2.weights_used()["mine.pth"].sha256 == sha256_file(other)
    # one missing key is refused, naming it
    bad = dict(state)
    bad.pop("deconv2.conv2d.bias")
    torch.save({"model": bad}, other)
    with pytest.raises(WeightsError, match="missing 1 keys.*deconv2.conv2d.bias"):
        load_transformnet(other)


def test_missing_weights_is_one_line_naming_the_file():
    with pytest.raises(WeightsError) as err:
        Lai18(Welsh())
    msg = str(err.value)
    assert FILE in msg and "\n" not in msg and "hub/checkpoints" in msg


def test_frame_size_handling_and_recurrence(torch_home, sample_frames):
    """Odd sizes go through cv2 bilinear resizing to multiples of 4 and back; frame 0 is the
    processed frame itself; later frames differ from it by the network's residual."""
    _save(torch_home, official_state())
    frames = sample_frames["bikes"][:4, :30, :42]  # neither a multiple of 4
    L = rgb_uint8_to_lab(torch.from_numpy(frames).permute(0, 3, 1, 2))[:, :1].contiguous()
    base = Welsh(samples=30)
    base.start_clip([sample_frames["bikes"][0]])
    processed = base.colorize(L)
    model = Lai18(Welsh(samples=30))
    model.start_clip([sample_frames["bikes"][0]])
    out = torch.cat([model.colorize(L[:2]), model.colorize(L[2:])])  # state carries across calls
    assert out.shape == (4, 3, 30, 42) and out.dtype == torch.uint8
    assert torch.equal(out[0], processed[0])
    assert not torch.equal(out[1], processed[1])
    # the same computation by hand for frame 1, as test_pretrained.py does it
    import cv2

    def rd(x):
        return cv2.resize(x.permute(1, 2, 0).numpy().astype(np.float32) / 255.0, (44, 32), interpolation=cv2.INTER_LINEAR)

    gray = model._prev_in  # noqa: F841 - (state exists)
    from vcbench.lab import lab_to_rgb_uint8

    g = lab_to_rgb_uint8(torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], 1))
    x = np.concatenate([rd(processed[1]), rd(out[0]), rd(g[1]), rd(g[0])], axis=2)
    with torch.no_grad():
        res, _ = model.net(torch.from_numpy(x).permute(2, 0, 1)[None], None)
    o = cv2.resize((torch.from_numpy(x[..., :3]).permute(2, 0, 1)[None] + res)[0].permute(1, 2, 0).numpy(), (42, 30))
    expect = (np.clip(o, 0, 1) * 255.0).astype(np.uint8)
    assert np.array_equal(out[1].permute(1, 2, 0).numpy(), expect)
