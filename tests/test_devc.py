"""DEVC port: strict loading of the official files, the documented operations, the whole pipeline.

Weights are random (seeded) state dicts with the official keys and shapes, saved as the release zip
lays them out in a temporary TORCH_HOME and loaded through the real resolver and loader. The
one-time comparison with the official code itself is benchmarks/devc_official_compare.py.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vcbench.baselines.devc import DEVC
from vcbench.baselines.devc.inference import (OFFICIAL_SIZE, DEVCEngine, DEVCNet, DEVCOptions, devc_lab_to_rgb,
                                              leaderboard_size, official_center_pad, official_colorize, pad_amounts)
from vcbench.baselines.devc.vgg import CAFFE_MEAN_BGR, caffe_preprocess
from vcbench.baselines.devc.warpnet import WarpNet, channel_normalize
from vcbench.baselines.checkpoints import load_strict
from vcbench.baselines.devc.weights import STRICT_HINT, load_devc_weights
from vcbench.errors import InputError, WeightsError
from vcbench.lab import rgb_uint8_to_lab
from vcbench.random_weights import DEVC_ZIP_LAYOUT, devc_states, write_devc_zip
from vcbench.weights import digests

# Read off the official models/NonlocalNet.py and models/ColorVidNet.py (module, key, shape).
OFFICIAL_KEYS = [
    ("warpnet", "layer2_1.1.weight", (128, 128, 3, 3)),
    ("warpnet", "layer2_1.3.weight", (1,)),  # PReLU
    ("warpnet", "layer2_1.5.weight", (64, 128, 3, 3)),
    ("warpnet", "layer4_1.1.weight", (256, 512, 3, 3)),
    ("warpnet", "layer5_1.6.weight", (64, 256, 3, 3)),
    ("warpnet", "layer5_1.8.weight", (1,)),
    ("warpnet", "layer.0.conv1.weight", (256, 256, 3, 3)),
    ("warpnet", "layer.2.prelu.weight", (1,)),
    ("warpnet", "theta.weight", (256, 256, 1, 1)),
    ("warpnet", "phi.bias", (256,)),
    ("colornet", "conv1_1.0.weight", (32, 7, 3, 3)),
    ("colornet", "conv1_1.2.weight", (64, 32, 3, 3)),
    ("colornet", "conv1_2norm_ss.weight", (64, 1, 1, 1)),
    ("colornet", "conv3_3norm_ss.weight", (256, 1, 1, 1)),
    ("colornet", "conv5_1.weight", (512, 512, 3, 3)),
    ("colornet", "conv8_1.1.weight", (256, 512, 3, 3)),
    ("colornet", "conv10_1.1.bias", (128,)),
    ("colornet", "conv1_2_short.weight", (128, 64, 3, 3)),
    ("colornet", "conv10_ab.weight", (2, 128, 1, 1)),
    ("vgg", "conv1_1.weight", (64, 3, 3, 3)),
    ("vgg", "conv3_4.bias", (256,)),
    ("vgg", "conv5_4.weight", (512, 512, 3, 3)),
]
OFFICIAL_COUNTS = {"warpnet": 43, "colornet": 65, "vgg": 32}
ABSENT = [("colornet", "conv1_2norm_ss.bias"), ("colornet", "conv1_2norm.running_mean"), ("warpnet", "layer2_1.2.weight")]


def _module(net: DEVCNet, which: str) -> torch.nn.Module:
    return {"warpnet": net.warpnet, "colornet": net.colornet, "vgg": net.vgg}[which]


@pytest.fixture(scope="module")
def official_state() -> dict[str, dict[str, torch.Tensor]]:
    return devc_states(seed=0)


@pytest.fixture(scope="module")
def net(official_state) -> DEVCNet:
    n = DEVCNet()
    for which, state in official_state.items():
        _module(n, which).load_state_dict(state, strict=True)
    return n.eval()


@pytest.fixture(scope="module")
def release_zip(tmp_path_factory, official_state) -> Path:
    return write_devc_zip(tmp_path_factory.mktemp("devc") / "colorization_checkpoint.zip", official_state)


@pytest.fixture
def devc_home(torch_home, release_zip) -> Path:
    target = torch_home / "hub" / "checkpoints" / "colorization_checkpoint.zip"
    target.symlink_to(release_zip)
    return torch_home


# ------------------------------------------------------------------------------ loading
def test_port_has_the_official_keys_and_shapes():
    net = DEVCNet()
    for which, key, shape in OFFICIAL_KEYS:
        sd = _module(net, which).state_dict()
        assert key in sd, (which, key)
        assert tuple(sd[key].shape) == shape, (which, key)
    for which, n in OFFICIAL_COUNTS.items():
        assert len(_module(net, which).state_dict()) == n, which
    for which, key in ABSENT:
        assert key not in _module(net, which).state_dict()


def test_other_layouts_module_prefix_and_folders(tmp_path, official_state):
    # tiny stand-ins: finding members by base name and hashing does not depend on the contents
    tiny = {k: {"w": torch.full((2,), float(i))} for i, k in enumerate(DEVC_ZIP_LAYOUT)}
    layout = {"warpnet": "mirror/nonlocal_net_iter_76000.pth", "colornet": "mirror/x/colornet_iter_76000.pth",
              "vgg": "vgg19_conv.pth"}
    z = write_devc_zip(tmp_path / "any-name.zip", tiny, layout, prefix="module.")
    w = load_devc_weights(z)
    assert w.colornet["module.w"][0] == 1 and w.vgg["module.w"][0] == 2
    folder = tmp_path / "folder"
    with zipfile.ZipFile(z) as zf:
        zf.extractall(folder)
    w = load_devc_weights(folder)
    assert set(w.sha256) == {"nonlocal_net_iter_76000.pth", "colornet_iter_76000.pth", "vgg19_conv.pth"}
    assert w.warpnet["module.w"][0] == 0
    # a DataParallel `module.` prefix loads strictly into the real architecture
    warp = WarpNet()
    load_strict(warp, {"module." + k: v for k, v in official_state["warpnet"].items()}, "warpnet", None,
                model="DEVC", hint=STRICT_HINT)
    torch.testing.assert_close(warp.theta.weight, official_state["warpnet"]["theta.weight"], rtol=0, atol=0)


def test_without_weights_the_error_says_how_to_get_them(torch_home):
    with pytest.raises(WeightsError) as err:
        DEVC("cpu")
    msg = str(err.value)
    assert "colorization_checkpoint.zip" in msg and "vcbench weights download devc" in msg
    assert "--weights PATH" in msg and "github.com/zhangmozhe" in msg  # the flag the README documents
    assert "\n" not in msg


def test_wrong_architecture_and_code_pickles_are_refused(tmp_path, official_state):
    from vcbench.baselines.devc.colorvidnet import ColorVidNet

    colornet = dict(official_state["colornet"])
    del colornet["conv10_ab.bias"]
    with pytest.raises(WeightsError, match="missing 1 keys .*conv10_ab.bias"):
        load_strict(ColorVidNet(), colornet, "colornet_iter_76000.pth", None, model="DEVC", hint=STRICT_HINT)
    warp = dict(official_state["warpnet"])
    warp["theta.weight"] = torch.zeros(128, 256, 1, 1)
    warp["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match="unexpected 1 keys .*extra.weight.*wrong shapes .*theta.weight"):
        load_strict(WarpNet(), warp, "nonlocal_net_iter_76000.pth", None, model="DEVC", hint=STRICT_HINT)
    tiny = {k: {"w": torch.zeros(1)} for k in DEVC_ZIP_LAYOUT}
    z = write_devc_zip(tmp_path / "c.zip", tiny)
    with zipfile.ZipFile(z, "a") as zf:  # a second vgg19_conv.pth is ambiguous
        zf.writestr("other/vgg19_conv.pth", b"")
    with pytest.raises(WeightsError, match="2 files named vgg19_conv.pth"):
        load_devc_weights(z)
    code = tmp_path / "d"
    code.mkdir()
    for which, member in DEVC_ZIP_LAYOUT.items():
        torch.save(tiny[which], code / Path(member).name)
    torch.save({"x": Path("/")}, code / "vgg19_conv.pth")  # an arbitrary object, not a tensor
    with pytest.raises(WeightsError, match="weights_only=True"):
        load_devc_weights(code)


def test_members_are_unpickled_only_by_the_weights_module(tmp_path, monkeypatch):
    """Every DEVC member goes through `vcbench.weights.load_state_dict` (weights_only=True, one place)."""
    import vcbench.weights

    seen: list[str] = []
    real = vcbench.weights.load_state_dict

    def spy(path, key=None, *, data=None):
        seen.append(Path(path).name)
        assert data is not None  # zip members are read in memory, never extracted
        return real(path, key, data=data)

    monkeypatch.setattr(vcbench.weights, "load_state_dict", spy)
    tiny = {k: {"w": torch.zeros(1)} for k in DEVC_ZIP_LAYOUT}
    weights = load_devc_weights(write_devc_zip(tmp_path / "c.zip", tiny), allow_unverified=True)
    assert seen == ["c.zip"] * 3 and torch.equal(weights.vgg["w"], torch.zeros(1))
    bad = tmp_path / "bad"
    bad.mkdir()
    for which, member in DEVC_ZIP_LAYOUT.items():
        (bad / Path(member).name).write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError) as exc:
        load_devc_weights(bad)
    assert "refused to load" in str(exc.value) and "\n" not in str(exc.value)


# ------------------------------------------------------------------------------ operations
def test_channel_normalisation_and_caffe_preprocessing():
    x = torch.randn(2, 5, 3, 4)
    torch.testing.assert_close(channel_normalize(x), x / x.pow(2).sum(1, keepdim=True).sqrt())
    rgb = torch.rand(1, 3, 2, 2)
    out = caffe_preprocess(rgb)
    for c_out, c_in in ((0, 2), (1, 1), (2, 0)):
        torch.testing.assert_close(out[:, c_out], (rgb[:, c_in] - CAFFE_MEAN_BGR[c_out]) * 255)


def test_cosine_correlation_and_temperature_softmax_are_an_argmax_gather():
    g = torch.Generator().manual_seed(0)
    theta, phi = torch.randn(2, 16, 6 * 8, generator=g), torch.randn(2, 16, 5 * 7, generator=g)
    colours = torch.randn(2, 3, 5 * 7, generator=g) * 50
    q, k = WarpNet._centre_normalize(theta.view(2, 16, 6, 8)), WarpNet._centre_normalize(phi.view(2, 16, 5, 7))
    # independent: mean-centred over positions, cosine similarity of every pair, in float64
    tc, pc = (t.double() - t.double().mean(-1, keepdim=True) for t in (theta, phi))
    cos = torch.einsum("ncp,ncq->npq", tc, pc) / (tc.norm(dim=1)[:, :, None] * pc.norm(dim=1)[:, None, :])
    torch.testing.assert_close(torch.bmm(q.transpose(1, 2), k).double(), cos, atol=1e-6, rtol=0)
    lab, sim = WarpNet.correlate(q, k, colours, (6, 8), temperature=1e-10)
    best = cos.argmax(-1)
    expected = torch.stack([colours[n][:, best[n]] for n in range(2)]).view(2, 3, 6, 8)
    torch.testing.assert_close(lab, expected.float(), atol=1e-4, rtol=0)
    torch.testing.assert_close(sim, cos.amax(-1).view(2, 1, 6, 8).float(), atol=1e-6, rtol=0)
    hard, _ = WarpNet.correlate(q, k, colours, (6, 8), hard=True)
    torch.testing.assert_close(hard, lab)
    chunked, sim_c = WarpNet.correlate(q, k, colours, (6, 8), chunk=7)
    torch.testing.assert_close(chunked, lab)
    torch.testing.assert_close(sim_c, sim)
    # at a temperature of 1 it is a real softmax average, not the argmax
    soft, _ = WarpNet.correlate(q, k, colours, (6, 8), temperature=1.0)
    w = torch.softmax(cos / 1.0, -1)
    torch.testing.assert_close(soft.double(), torch.bmm(w, colours.double().transpose(1, 2)).transpose(1, 2).reshape(2, 3, 6, 8),
                               atol=1e-4, rtol=0)


def test_vgg_trunk_matches_torchvision_vgg19_with_the_same_weights():
    from torchvision.models.vgg import cfgs, make_layers

    from vcbench.baselines.devc.vgg import VGG19Features

    torch.manual_seed(0)
    ours = VGG19Features().eval()
    tv = make_layers(cfgs["E"]).eval()  # torchvision's VGG19 `features` (config E), max pooling
    convs = [m for m in tv if isinstance(m, torch.nn.Conv2d)]
    names = list(dict.fromkeys(k.split(".")[0] for k in ours.state_dict()))
    assert len(convs) == len(names) == 16
    for conv, name in zip(convs, names):
        conv.load_state_dict(getattr(ours, name).state_dict())
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        got = ours(x, ("r12", "r22", "r32", "r42", "r52"))
        pre = caffe_preprocess(x)
        # relu1_2, relu2_2, relu3_2, relu4_2, relu5_2 of torchvision's features
        want = [tv[:i + 1](pre) for i in (3, 8, 13, 22, 31)]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)


def test_warpnet_pads_a_fractional_relu5_2_row_and_converter_matches_skimage():
    torch.manual_seed(0)
    w = WarpNet().eval()
    feats = [torch.rand(1, 128, 20, 32), torch.rand(1, 256, 10, 16), torch.rand(1, 512, 5, 8), torch.rand(1, 512, 2, 4)]
    with torch.no_grad():
        assert w.fuse(*feats).shape == (1, 256, 10, 16)  # H = 40: H/16 = 2.5, one row padded each side
    from skimage.color import lab2rgb

    rng = np.random.default_rng(0)
    lab = np.stack([rng.uniform(0, 100, 500), rng.uniform(-60, 60, 500), rng.uniform(-60, 60, 500)], -1)[None]
    ours = devc_lab_to_rgb(torch.from_numpy(lab).float().permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, np.clip(lab2rgb(lab), 0, 1), atol=2e-5)


def test_geometry_rules():
    for h, w in ((144, 176), (272, 640), (720, 1280), (1080, 1440), (50, 400)):
        nh, nw = leaderboard_size(h, w)
        assert nh % 8 == 0 and nw % 16 == 0
        assert abs(nh * nw / (216 * 384) - 1) < 0.15
        assert abs((nw / nh) / (w / h) - 1) < 0.15
    assert leaderboard_size(432, 768) == (216, 384)
    assert pad_amounts(100, 150) == (5, 5, 2, 2)
    frame = np.random.default_rng(0).integers(0, 256, (432, 768, 3), dtype=np.uint8)
    np.testing.assert_array_equal(official_center_pad(frame), frame)
    from skimage.transform import resize

    big = np.repeat(np.repeat(frame, 2, 0), 2, 1)  # 16:9: a pure resize
    np.testing.assert_array_equal(official_center_pad(big),
                                  resize(big, (432, 768), mode="reflect", preserve_range=True, anti_aliasing=True).astype(np.uint8))
    four_three = frame[:, :576]  # 4:3 -> fit the width (768), crop rows from 576 to 432
    out = official_center_pad(four_three)
    full = resize(four_three, (576, 768), mode="reflect", preserve_range=True, anti_aliasing=True).astype(np.uint8)
    assert out.shape == (432, 768, 3)
    np.testing.assert_array_equal(out, full[72:504])


# ------------------------------------------------------------------------------ pipeline
def _carphone(n: int) -> np.ndarray:
    from vcbench.frames import Clip, sample_videos

    frames = []
    for f in Clip("carphone", sample_videos()["carphone_pristine"], "video").iter_frames():
        frames.append(f)
        if len(frames) == n:
            break
    return np.stack(frames)


def _l(frames: np.ndarray) -> torch.Tensor:
    return rgb_uint8_to_lab(torch.from_numpy(frames).permute(0, 3, 1, 2))[:, :1]


def test_release_zip_loads_strictly_and_colorizes_real_frames(devc_home, official_state, release_zip):
    """The one full-size load: resolver -> zip members -> weights_only -> strict; then the pipeline."""
    import hashlib

    from skimage import data

    model = DEVC("cpu", net_area=48 * 64, geometry="leaderboard")
    for which, state in official_state.items():
        loaded = _module(model.net, which).state_dict()
        assert loaded.keys() == state.keys()
        for k in ("theta.weight", "layer.1.prelu.weight", "conv10_ab.weight", "conv1_1.0.bias", "conv5_4.weight"):
            if k in state:
                torch.testing.assert_close(loaded[k], state[k], rtol=0, atol=0)
    sha = digests(model.weights_used())
    assert sha["colorization_checkpoint.zip"] == hashlib.sha256(release_zip.read_bytes()).hexdigest()
    with zipfile.ZipFile(release_zip) as zf:
        assert sha["colornet_iter_76000.pth"] == hashlib.sha256(zf.read(DEVC_ZIP_LAYOUT["colornet"])).hexdigest()
    assert set(sha) == {"colorization_checkpoint.zip", "nonlocal_net_iter_76000.pth", "colornet_iter_76000.pth",
                        "vgg19_conv.pth"}
    assert model.config()["geometry"] == "leaderboard" and model.config()["temperature"] == 1e-10
    assert model.verified is True  # the canonical zip: structure checked, nothing contradicts it

    frames = _carphone(2)
    ref = data.chelsea()
    l = _l(frames)
    model.start_clip([ref])
    out = torch.cat([model.colorize(l[:1]), model.colorize(l[1:])])  # the recurrence crosses calls
    assert out.dtype == torch.uint8 and out.shape == (2, 3, 144, 176)
    l_out = rgb_uint8_to_lab(out)[:, :1]
    diff = (l_out - l).abs()
    assert diff.mean() < 1.0 and diff.quantile(0.95) < 2.0
    assert out.float().std(dim=(0, 2, 3)).min() > 1.0  # it did colour something
    model.start_clip([ref])
    again = torch.cat([model.colorize(l[:1]), model.colorize(l[1:])])
    torch.testing.assert_close(again, out, rtol=0, atol=0)  # same bytes, and state resets per clip


def test_engine_batches_frames_and_clips_like_one_by_one(net):
    from skimage import data

    frames = _carphone(2)
    l = _l(frames)
    opts = DEVCOptions(geometry="leaderboard", net_area=48 * 64, smooth=False)
    refs = [data.chelsea(), data.coffee()[:300, :451]]
    per_clip = []
    for ref in refs:
        e = DEVCEngine(net, opts)
        e.start([ref])
        per_clip.append(torch.cat([e.step_ab(l[i:i + 1][None]) for i in range(2)], 1))
    e = DEVCEngine(net, opts)
    e.start(refs)
    both = e.step_ab(torch.stack([l, l]))
    # batched convolutions sum in another order; through ~40 layers and the recurrence that stays
    # below 0.1 on an ab range of +-128 (an argmax flip would move a 4x4 block by tens)
    torch.testing.assert_close(both, torch.cat(per_clip), atol=0.1, rtol=0)
    assert both.abs().max() > 5
    # propagation starts from the reference Lab instead of zeros, so the first frame differs
    p = DEVCEngine(net, DEVCOptions(geometry="leaderboard", net_area=48 * 64, propagate=True, smooth=False))
    p.start([frames[0]])
    first = p.step_ab(l[:1][None])
    assert (first - per_clip[0][:, :1]).abs().max() > 1e-3


def test_pad_geometry_keeps_any_aspect_and_size(net):
    frames = _carphone(1)[:, 10:131, 3:170]  # 121 x 167, multiples of nothing
    e = DEVCEngine(net, DEVCOptions(geometry="pad", net_scale=0.4))
    e.start([frames[0]])
    out = e.colorize(_l(frames)[None])
    assert out.shape == (1, 1, 3, 121, 167)
    assert e.plan.net_hw[0] % 8 == 0 and e.plan.net_hw[1] % 16 == 0
    with pytest.raises(InputError):
        DEVCEngine(net, DEVCOptions(geometry="official")).start([])


@pytest.mark.slow
def test_official_geometry_runs_test_py_sizes(net):
    frame = _carphone(1)[0]
    out = list(official_colorize(net, [frame], frame, propagate=True))
    assert out[0].shape == (*OFFICIAL_SIZE, 3) and out[0].dtype == np.uint8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none here")
def test_gpu_half_precision_close_to_fp32(net):
    net = net.cuda()
    frames = _carphone(4)
    l = _l(frames)[None].cuda()
    outs = {}
    for prec in ("fp32", "fp16", "bf16"):
        e = DEVCEngine(net, DEVCOptions(geometry="leaderboard", precision=prec))
        e.start([frames[0]])
        outs[prec] = e.colorize(l).float()
    for prec in ("fp16", "bf16"):
        mse = (outs[prec] - outs["fp32"]).pow(2).mean()
        assert 10 * torch.log10(255 ** 2 / mse.clamp(min=1e-10)) > 30
