"""`vcbench evaluate` says, before it starts, what the model needs: weights present or missing, GPU
advised or not, and the cost from seconds per frame measured on the development CPU."""

from __future__ import annotations

import pytest

from vcbench.baselines.needs import CPU_SECONDS, WRAPPER_CPU_SECONDS, describe, estimate_seconds_per_frame
from vcbench.cli import main


def test_estimates_scale_with_area_epochs_and_the_size_cap():
    assert estimate_seconds_per_frame("welsh", {}, 480, 854) == pytest.approx(CPU_SECONDS["welsh"])
    assert estimate_seconds_per_frame("welsh", {}, 240, 427) == pytest.approx(CPU_SECONDS["welsh"] / 4, rel=1e-2)
    # tcvc runs at net_size 256 whatever the frame size: its figure does not scale with the area
    assert estimate_seconds_per_frame("tcvc", {}, 1080, 1920) == pytest.approx(CPU_SECONDS["tcvc"])
    full = estimate_seconds_per_frame("welsh+dvp", {}, 480, 854)
    assert full == pytest.approx(CPU_SECONDS["welsh"] + 50 * WRAPPER_CPU_SECONDS["dvp"])
    assert estimate_seconds_per_frame("welsh+dvp", {"epochs": 5}, 480, 854) < full / 9
    capped = estimate_seconds_per_frame("welsh+dvp", {"max_side": 427}, 480, 854)
    assert capped == pytest.approx(CPU_SECONDS["welsh"] + 50 * WRAPPER_CPU_SECONDS["dvp"] / 4, rel=1e-2)
    assert estimate_seconds_per_frame("devc", {}, 480, 854) is None


def test_describe_names_missing_weights_and_advises_a_gpu(torch_home):
    text = describe("zhang16+lai18", {}, n_frames=1999, size=(480, 854))
    assert "colorization_release_v2-9b330a0b.pth: MISSING" in text and "ECCV18_blind_consistency.pth: MISSING" in text
    assert "GPU advised" in text and " h for these 1999 frames" in text
    (torch_home / "hub" / "checkpoints" / "ECCV18_blind_consistency.pth").write_bytes(b"x")
    assert "ECCV18_blind_consistency.pth: present" in describe("zhang16+lai18", {}, n_frames=10, size=(480, 854))
    assert "runs well on the CPU" in describe("gray", {}, n_frames=10, size=(480, 854))


def test_evaluate_prints_the_needs_before_it_starts(tmp_path, capsys):
    rc = main(["evaluate", "--model", "gray", "--dataset", "sample", "--dataset-option", "frames=2",
               "--dataset-option", "width=32", "--dataset-option", "clips=carphone", "--metrics", "psnr",
               "--flow", "dis", "--db", str(tmp_path / "r.sqlite"), "--cache-dir", str(tmp_path / "c"), "--no-cache"])
    assert rc == 0
    err = capsys.readouterr().err
    assert err.startswith("vcbench: gray needs: weights: none\nvcbench: speed measured here")
