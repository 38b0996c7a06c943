"""tcvc: TCVC_IDC with the official key names and shapes, strict loading of `80000_G.pth` through the
resolver, the official anchor schedule and inference on real frames, and Resample2d = vcbench's warp."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import gt_luminance, requires_gpu
from vcbench.baselines.tcvc import TCVC, TCVCNet, anchor_frames, segments
from vcbench.baselines.tcvc.files import MEMBER, SPEC
from vcbench.baselines.tcvc.flownet2 import FlowNet2
from vcbench.baselines.zhang import SIGGRAPH17Net
from vcbench.errors import InputError, WeightsError
from vcbench.flow.warp import backward_warp
from vcbench.lab import lab_to_rgb, rgb_uint8_to_lab
from vcbench.random_weights import tcvc_state, write_random_weights
from vcbench.weights import WeightFile, digests

FILE = "TCVC_IDC_80000_G.pth"

# Read off TCVC_IDC_arch.py (:27-74 the three small nets, :92-126 the modules) and NVIDIA's FlowNet2
# copy in codes/models/archs/networks/ (FlowNetC.py:20-56, FlowNetS.py:20-45, FlowNetSD.py:16-49,
# FlowNetFusion.py:16-33, submodules.py: conv = Sequential(Conv2d, LeakyReLU) without BatchNorm).
OFFICIAL_KEYS = [
    ("L_fea_extractor.0.weight", (32, 1, 3, 3)), ("L_fea_extractor.2.weight", (32, 32, 3, 3)),
    ("channel_reduction.conv1.weight", (64, 128, 1, 1)), ("channel_reduction.conv2.weight", (64, 64, 3, 3)),
    ("channel_reduction.conv3.weight", (64, 64, 1, 1)), ("weigting.conv1.weight", (196, 352, 3, 3)),
    ("weigting.conv3.weight", (1, 64, 3, 3)), ("feature_refine.conv1.weight", (196, 288, 3, 3)),
    ("feature_refine.conv3.bias", (128,)), ("fea_key.model1.0.weight", (64, 4, 3, 3)),
    ("fea_key.model1.4.running_var", (64,)), ("fea_key.model_class.0.weight", (529, 256, 1, 1)),
    ("fea_key.model_out.0.weight", (2, 128, 1, 1)), ("flow.flownetc.conv1.0.weight", (64, 3, 7, 7)),
    ("flow.flownetc.conv_redir.0.weight", (32, 256, 1, 1)), ("flow.flownetc.conv3_1.0.weight", (256, 473, 3, 3)),
    ("flow.flownetc.upsampled_flow6_to_5.bias", (2,)), ("flow.flownets_1.conv1.0.weight", (64, 12, 7, 7)),
    ("flow.flownets_2.predict_flow2.weight", (2, 194, 3, 3)), ("flow.flownets_d.conv0.0.weight", (64, 6, 3, 3)),
    ("flow.flownets_d.inter_conv5.0.weight", (512, 1026, 3, 3)), ("flow.flownets_d.predict_flow5.weight", (2, 512, 3, 3)),
    ("flow.flownetfusion.conv0.0.weight", (64, 11, 3, 3)), ("flow.flownetfusion.inter_conv0.0.weight", (16, 82, 3, 3)),
    ("flow.flownetfusion.predict_flow0.weight", (2, 16, 3, 3)),
]


@pytest.fixture(scope="module")
def tcvc_file(tmp_path_factory):
    """A random-init 80000_G.pth in the official layout, once per module (~65 MB of shared pools)."""
    return write_random_weights(tmp_path_factory.mktemp("tcvc"), ["tcvc"])["tcvc"]


@pytest.fixture(scope="module")
def model(tcvc_file):
    """The smallest geometry FlowNet2 takes (64x64) and a short interval, so a test clip has two segments."""
    return TCVC(weights=tcvc_file, net_size=64, interval=2)


@pytest.fixture(scope="module")
def clip_L(sample_frames):
    """Five real frames of bikes, downscaled to 40x96 (not square: the network resizes to 64x64)."""
    frames = np.stack([np.asarray(F.interpolate(torch.from_numpy(f).permute(2, 0, 1)[None].float(), size=(40, 96),
                                                mode="area")[0].permute(1, 2, 0).round().byte())
                       for f in sample_frames["bikes"][:5]])
    return gt_luminance(frames)


def test_official_keys_and_shapes():
    with torch.device("meta"):
        sd = TCVCNet().state_dict()
        siggraph = SIGGRAPH17Net().state_dict()
        flownet = FlowNet2()
    for key, shape in OFFICIAL_KEYS:
        assert tuple(sd[key].shape) == shape, key
    # FlowNet2.py:17 'Parameter count = 162,518,834'; its 220 tensors all under flow.
    assert sum(p.numel() for p in flownet.parameters()) == 162_518_834
    assert sum(k.startswith("flow.") for k in sd) == 220
    # FlowNetS's flow upsamplers have no bias (FlowNetS.py:42-45), FlowNetC's and FlowNetSD's do.
    assert "flow.flownets_1.upsampled_flow6_to_5.bias" not in sd and "flow.flownets_d.upsampled_flow3_to_2.bias" in sd
    # the anchor net is vcbench's zhang17 network: the layout of siggraph17-df00044c.pth
    assert {k.removeprefix("fea_key."): tuple(v.shape) for k, v in sd.items() if k.startswith("fea_key.")} == \
        {k: tuple(v.shape) for k, v in siggraph.items()}
    # nothing else: the Resample2d / ChannelNorm / Upsample modules hold no parameters
    assert {k.split(".")[0] for k in sd} == {"L_fea_extractor", "channel_reduction", "weigting", "feature_refine",
                                            "fea_key", "flow"}
    state = tcvc_state(0)
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in sd.items()}


def test_strict_load_from_cache_and_path_records_sha256(torch_home, tcvc_file, tmp_path):
    from vcbench.evaluate import build_model
    from vcbench.weights import sha256_file

    (torch_home / "hub" / "checkpoints" / FILE).symlink_to(tcvc_file)
    m = TCVC(net_size=64)
    assert m.weights_used() == {FILE: WeightFile(sha256_file(tcvc_file))} and m.verified  # no published hash to contradict
    state = torch.load(tcvc_file, weights_only=True)
    assert torch.equal(m.net.flow.flownetfusion.predict_flow0.weight, state["flow.flownetfusion.predict_flow0.weight"])
    assert torch.equal(m.net.weigting.conv1.weight, state["weigting.conv1.weight"])
    assert m.config() == {"interval": 17, "net_size": 64}
    # a folder holding the official layout, through the harness's option routing
    folder = tmp_path / "TCVC_IDC" / "models"
    folder.mkdir(parents=True)
    (folder / MEMBER).symlink_to(tcvc_file)
    m2 = build_model("tcvc", torch.device("cpu"), {"weights": str(tmp_path), "net_size": 64})
    assert digests(m2.weights_used()) == {MEMBER: sha256_file(tcvc_file)}
    # one missing key and one wrong shape are refused, naming them
    bad = dict(state)
    bad.pop("flow.flownets_d.inter_conv2.0.bias")
    bad["weigting.conv3.weight"] = torch.zeros(2, 64, 3, 3)
    other = tmp_path / "bad.pth"
    torch.save(bad, other)
    with pytest.raises(WeightsError, match=r"missing 1 keys.*inter_conv2.0.bias.*wrong shapes.*weigting.conv3.weight"):
        TCVC(weights=other, net_size=64)


def test_missing_weights_is_one_line_naming_file_and_links():
    with pytest.raises(WeightsError) as err:
        TCVC()
    msg = str(err.value)
    assert "\n" not in msg and FILE in msg and "hub/checkpoints" in msg and SPEC.url in msg
    assert "no direct download" in msg


def test_anchor_schedule_is_the_official_one():
    # test_TCVC_onesampling.py: keyframes range(0, n, interval + 1) minus a last one on frame n - 1,
    # each segment frames[k : k + interval + 2]
    assert segments(40) == [(0, 18), (18, 36), (36, 39)]
    assert anchor_frames(40) == [0, 18, 36, 39]
    assert segments(37) == [(0, 18), (18, 36)] and anchor_frames(37) == [0, 18, 36]
    assert segments(19) == [(0, 18)] and segments(20) == [(0, 18), (18, 19)]
    assert segments(2) == [(0, 1)] and anchor_frames(1) == [0]
    assert anchor_frames(5, 0) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        segments(0)


@pytest.fixture(scope="module")
def colorized(model, clip_L):
    """Two runs of the clip through `colorize`, each after `start_clip` (the harness's calls)."""
    runs = []
    for _ in range(2):
        model.start_clip([])
        runs.append(model.colorize(clip_L))
    return runs


def _official_output(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """test_TCVC_onesampling.py:232-238: ab bilinearly to the frame's size, x110, joined with the
    frame's L, lab2rgb, clip(x255), round."""
    up = F.interpolate(ab, size=L.shape[2:], mode="bilinear", align_corners=False) * 110.0
    return torch.round(lab_to_rgb(torch.cat((L, up), 1)) * 255.0).to(torch.uint8)


def test_colorize_real_frames(model, clip_L, colorized):
    n, _, h, w = clip_L.shape
    out, again = colorized
    assert out.dtype == torch.uint8 and out.shape == (n, 3, h, w)
    # The Colorizer contract: the frame's own L, with the predicted ab. Where the colour is in gamut
    # (no channel clipped) the returned RGB has the input's L up to the uint8 rounding.
    L_out = rgb_uint8_to_lab(out)[:, :1]
    inside = ((out > 0) & (out < 255)).all(1, keepdim=True)
    assert inside.float().mean() > 0.5
    assert (L_out - clip_L)[inside].abs().max() < 0.6
    assert rgb_uint8_to_lab(out)[:, 1:].abs().mean() > 1.0  # coloured, not grey
    assert torch.equal(again, out)  # deterministic on the CPU
    # a second call without start_clip would cut the clip: refused before any work
    with pytest.raises(InputError, match="whole clip"):
        model.colorize(clip_L[:2])


def test_anchors_are_the_image_colorizer_alone(model, clip_L, colorized):
    """Of 5 frames (interval 2), 0, 3 and 4 are SIGGRAPH17's colours of that frame alone, output as the
    official script does; 1 and 2 come from propagation between anchors 0 and 3 and differ from it.

    An anchor equals the image colouriser's output up to float32 rounding: the clip's anchors run as
    one batch, the reference frame by frame, and which convolution kernel a batch gets depends on the
    CPU (on an AVX2 EPYC frame 3 differs by 1 in 0.009% of its values, an exact 0 on AVX-512), so the
    rounding may flip a uint8 level where a value sits at .5; the propagated frames differ by far more."""
    x = (F.interpolate(clip_L, size=(64, 64), mode="bilinear", align_corners=False) - 50.0) / 100.0
    with torch.inference_mode():
        alone = model.net.anchor(x)[0]
    assert torch.isfinite(alone).all() and alone.abs().max() <= 1.0  # tanh: ab / 110
    expected = _official_output(clip_L, alone)
    out = colorized[0]
    assert anchor_frames(5, 2) == [0, 3, 4]
    for i in (0, 3, 4):
        diff = (out[i].int() - expected[i].int()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3, (i, int(diff.max()), float((diff > 0).float().mean()))
    for i in (1, 2):
        assert (out[i].float() - expected[i].float()).abs().mean() > 0.5


def _resample2d_reference(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """flownet2-pytorch's Resample2d forward kernel (resample2d_kernel.cu:40-63, kernel_size 1,
    bilinear), written out: weights from the unclamped position, each neighbour index clamped."""
    n, c, h, w = img.shape
    out = np.zeros_like(img)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                xf, yf = x + flow[b, 0, y, x], y + flow[b, 1, y, x]
                alpha, beta = xf - math.floor(xf), yf - math.floor(yf)
                xl, xr = (max(min(int(math.floor(xf)) + d, w - 1), 0) for d in (0, 1))
                yt, yb = (max(min(int(math.floor(yf)) + d, h - 1), 0) for d in (0, 1))
                out[b, :, y, x] = ((1 - alpha) * (1 - beta) * img[b, :, yt, xl] + alpha * (1 - beta) * img[b, :, yt, xr]
                                   + (1 - alpha) * beta * img[b, :, yb, xl] + alpha * beta * img[b, :, yb, xr])
    return out


def test_resample2d_equals_vcbench_warp():
    rng = np.random.default_rng(3)
    img = rng.normal(size=(2, 3, 9, 13))
    flow = rng.uniform(-8, 8, size=(2, 2, 9, 13))       # many samples fall outside the frame
    flow[0, :, :3] = np.round(flow[0, :, :3])           # on grid points (alpha = beta = 0)
    flow[1, 0, 0, :] = -np.arange(13)                   # exactly onto the left border
    ref = _resample2d_reference(img, flow)
    got = backward_warp(torch.from_numpy(img), torch.from_numpy(flow)).numpy()
    assert np.abs(got - ref).max() < 1e-12
    got32 = backward_warp(torch.from_numpy(img).float(), torch.from_numpy(flow).float()).numpy()
    assert np.abs(got32 - ref).max() < 1e-4
    # and not what zero padding (ptlflow's FlowNet2 warp) or align_corners=False would give
    grid = torch.from_numpy(np.stack([(np.arange(13) + flow[:, 0]) * 2 / 12 - 1,
                                      (np.arange(9)[:, None] + flow[:, 1]) * 2 / 8 - 1], -1))
    zeros = F.grid_sample(torch.from_numpy(img), grid, padding_mode="zeros", align_corners=True).numpy()
    assert np.abs(zeros - ref).max() > 0.1


def test_flownet2_subtracts_one_mean_over_both_images(model):
    """NVIDIA's FlowNet2 centres each channel by its mean over both images together
    (FlowNet2.py:124): a brightness offset on both images changes nothing, on one image it does."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 3, 64, 64, generator=g)
    with torch.inference_mode():
        flows = model.net.flow(torch.cat((a, a + 0.2, a)), torch.cat((b, b + 0.2, b + 0.2)))
    assert (flows[1] - flows[0]).abs().max() < 1e-3 * flows[0].abs().max()
    assert (flows[2] - flows[0]).abs().max() > 1e-2 * flows[0].abs().max()
    with pytest.raises(ValueError, match="multiples of 64"):
        model.net.flow(a[..., :48], b[..., :48])


def test_bad_options_are_one_line(tcvc_file):
    with pytest.raises(InputError, match="multiple of 64"):
        TCVC(weights=tcvc_file, net_size=100)
    with pytest.raises(InputError, match="interval"):
        TCVC(weights=tcvc_file, interval=-1)


def test_models_list_shows_tcvc_with_citation(capsys, torch_home):
    from vcbench.baselines.registry import model_citation
    from vcbench.cli import main

    assert main(["models", "list", "--json"]) == 0
    row = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["tcvc"]
    assert row["available"] is True and not row.get("error")
    assert "Temporally Consistent Video Colorization" in model_citation("tcvc") and "Liu" in model_citation("tcvc")
    assert [w["name"] if isinstance(w, dict) else w for w in row["weights"]] == ["tcvc"]


@requires_gpu
def test_cuda_matches_cpu(model, tcvc_file, clip_L):
    cpu = model.predict_ab(clip_L)
    gpu = TCVC("cuda", weights=tcvc_file, net_size=64, interval=2)
    with torch.backends.cudnn.flags(enabled=True, deterministic=True, allow_tf32=False):
        ab = gpu.predict_ab(clip_L.cuda()).cpu()
    assert (ab - cpu).abs().max() < 1e-3
    gpu.start_clip([])
    assert gpu.colorize(clip_L.cuda()).shape == (5, 3, *clip_L.shape[2:])
