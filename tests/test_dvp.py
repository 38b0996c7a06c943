"""dvp: the Deep Video Prior U-Net, IRT's losses and schedule, determinism, the size cap, and the
effect on the bundled sample (welsh+dvp is more consistent than welsh at nearly the same PSNR)."""

from __future__ import annotations

import pytest
import torch

from vcbench.baselines.dvp import DVP, VCN, irt_losses, tf_upsample2x
from vcbench.baselines.gray import Gray
from vcbench.baselines.welsh import Welsh
from vcbench.errors import InputError
from conftest import gt_luminance
from vcbench.lab import rgb_uint8_to_lab


pytestmark = pytest.mark.usefixtures("one_torch_thread")




def test_tf1_bilinear_upsampling():
    """TF1 resize without half-pixel centres: even outputs copy, odd ones average with the next
    input, the last one repeats the edge (torch's half-pixel bilinear would not)."""
    x = torch.tensor([[[[0.0, 2.0, 6.0]]]]).expand(1, 1, 2, 3).clone()
    x[0, 0, 1] += 10
    up = tf_upsample2x(x)
    assert up.shape == (1, 1, 4, 6)
    assert up[0, 0, 0].tolist() == [0.0, 1.0, 2.0, 4.0, 6.0, 6.0]
    assert up[0, 0, :, 0].tolist() == [0.0, 5.0, 10.0, 10.0]
    assert not torch.allclose(up, torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear"))


def test_unet_layout_of_the_paper():
    sd = VCN(6).state_dict()
    shapes = {"g_conv1_1.weight": (32, 3, 1, 1), "g_conv1_2.weight": (32, 32, 3, 3), "g_conv5_2.weight": (512, 512, 3, 3),
              "g_up_1.weight": (256, 512, 3, 3), "g_conv6_1.weight": (256, 512, 3, 3), "g_up_4.weight": (32, 64, 3, 3),
              "g_conv9_1.weight": (32, 64, 3, 3), "g_conv9_2.weight": (6, 32, 3, 3)}
    for k, s in shapes.items():
        assert tuple(sd[k].shape) == s, k
    assert len(sd) == 2 * (2 + 8 + 4 + 8)  # 22 convolutions, weight and bias each
    net = VCN(6)
    net.reset_parameters(torch.Generator().manual_seed(0))
    assert all(float(m.bias.detach().abs().max()) == 0 for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert net(torch.rand(1, 3, 64, 96)).shape == (1, 6, 64, 96)


def test_irt_losses_and_confidence_map():
    inp = torch.full((1, 3, 1, 2), 0.4)
    proc = torch.tensor([[[[0.5, 0.5]]] * 3])
    pred = torch.zeros(1, 6, 1, 2)
    pred[:, :3, 0, 0], pred[:, 3:, 0, 0] = 0.5, 0.0   # pixel 0: the main output is right
    pred[:, :3, 0, 1], pred[:, 3:, 0, 1] = 0.0, 0.5   # pixel 1: the minor output is right
    init, conf = irt_losses(pred, proc, inp)
    assert init.item() == pytest.approx(0.25 + 0.9 * 0.25)
    assert conf.item() == pytest.approx(0.0)  # each pixel trains only the output that explains it


def test_schedule_determinism_and_seed(sample_frames):
    frames = sample_frames["bigbuckbunny"][:3, :32, :32]
    L = gt_luminance(frames)

    def run(**kw):
        m = DVP(Welsh(samples=40), epochs=3, init_epochs=2, **kw)
        m.start_clip([sample_frames["bigbuckbunny"][0]])
        return m.colorize(L), m.last_losses

    a, losses = run()
    b, _ = run()
    c, _ = run(seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)  # byte-identical on the CPU for one seed
    assert len(losses) == 3 and losses[1] < losses[0]   # the initialisation fits frame 0
    m = DVP(Gray(), epochs=1)
    m.start_clip([])
    m.colorize(L)
    with pytest.raises(InputError, match="whole clip"):
        m.colorize(L)
    with pytest.raises(InputError, match="epochs >= 1"):
        DVP(Gray(), epochs=0)


def test_size_cap_returns_gt_resolution_with_gtgt_luminance(sample_frames):
    frames = sample_frames["bikes"][:2, :60, :100]
    L = gt_luminance(frames)
    m = DVP(Welsh(samples=40), epochs=1, init_epochs=0, max_side=40)
    m.start_clip([sample_frames["bikes"][0]])
    out = m.colorize(L)
    assert out.shape == (2, 3, 60, 100) and m.config()["max_side"] == 40
    L_out = rgb_uint8_to_lab(out)[:, :1]
    assert (L_out - L).abs().mean() < 0.6  # the full-resolution GT L, up to uint8 rounding


def test_welsh_dvp_is_more_consistent_than_welsh_on_the_sample(tmp_path):
    """The effect the method exists for, on the bundled sample (carphone, 8 frames, 64 px wide, 25 epochs
    instead of 50 for time): warp error and flicker drop, PSNR stays within 1 dB."""
    from vcbench.benchmarks import load_benchmark
    from vcbench.evaluate import evaluate
    from vcbench.reports.db import ResultsDB

    bench = load_benchmark("sample", cache_dir=tmp_path / "c", options={"frames": 8, "width": 64, "clips": "carphone"})
    db = ResultsDB(tmp_path / "r.sqlite")
    kw = dict(db=db, metrics=["psnr", "warp_error", "flicker"], flow="dis", quiet=True, cache_dir=tmp_path / "c",
              use_cache=False)
    base = evaluate("welsh", bench, **kw).record.metrics
    dvp = evaluate("welsh+dvp", bench, model_options={"epochs": 25, "init_epochs": 2, "luminance": "input"},
                   **kw).record.metrics
    assert dvp["warp_error"] < 0.6 * base["warp_error"]
    assert dvp["flicker"] < 0.8 * base["flicker"]
    assert dvp["psnr"] > base["psnr"] - 1.0
