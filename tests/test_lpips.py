"""LPIPS against the `lpips` package on real degraded frames, with the same random-init AlexNet trunk."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import degrade, requires_gpu

from vcbench.errors import WeightsError

ALEX_FILE = "alexnet-owt-7be5be79.pth"


@pytest.fixture(scope="module")
def alex_state_file(tmp_path_factory):
    """A random-init torchvision AlexNet state dict (the real file's keys and shapes), written once."""
    from torchvision.models import alexnet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("alex") / ALEX_FILE
    torch.save(alexnet(weights=None).state_dict(), path)
    return path


@pytest.fixture
def alex_home(torch_home, alex_state_file):
    os.symlink(alex_state_file, torch_home / "hub" / "checkpoints" / ALEX_FILE)
    return torch_home


def _t(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()


def _pairs(sample_frames):
    out = []
    for i, (name, gt) in enumerate(sample_frames.items()):
        out.append((gt[:3], degrade(gt[:3], "jpeg+chroma" if i == 0 else "blur+hue", seed=i)))
    return out


def test_matches_lpips_package(alex_home, sample_frames):
    import lpips

    from vcbench.metrics.perceptual import LPIPS

    ours = LPIPS(allow_unverified=True)
    ref = lpips.LPIPS(net="alex", version="0.1", verbose=False)  # finds the same file in TORCH_HOME
    for gt, pred in _pairs(sample_frames):
        got = ours.distances(_t(pred), _t(gt)).numpy()
        with torch.no_grad():
            want = [ref(lpips.im2tensor(pred[k]), lpips.im2tensor(gt[k])).item() for k in range(len(gt))]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        assert (np.asarray(want) > 1e-3).all()  # real degradations, real distances
    same = ours.distances(_t(gt), _t(gt)).numpy()
    assert np.abs(same).max() < 1e-6


def test_metric_records_weights_and_batches_match(alex_home, sample_frames):
    """Batched vs frame by frame within 1e-5 (float32 convolutions may regroup sums by batch size)."""
    from vcbench.metrics.perceptual import LPIPS, lpips_linear_weights_path
    from vcbench.weights import sha256_file

    gt = sample_frames["bigbuckbunny"][:4]
    pred = degrade(gt, "jpeg", seed=5)
    a = LPIPS(allow_unverified=True, batch_size=4)
    b = LPIPS(allow_unverified=True, batch_size=1)
    a.update(_t(pred), _t(gt))
    for k in range(4):
        b.update(_t(pred[k:k + 1]), _t(gt[k:k + 1]))
    a.end_clip("c")
    b.end_clip("c")
    np.testing.assert_allclose(a.per_frame["c"], b.per_frame["c"], rtol=0, atol=1e-5)
    used = a.weights_used()
    assert used[ALEX_FILE].sha256 == sha256_file(alex_home / "hub" / "checkpoints" / ALEX_FILE)
    assert used[ALEX_FILE].verified is False  # random weights do not carry the published hash
    assert used["lpips-v0.1-alex.pth"].sha256 == sha256_file(lpips_linear_weights_path())


def test_unverified_weights_are_refused_by_default(alex_home):
    from vcbench.metrics.perceptual import LPIPS

    with pytest.raises(WeightsError, match="does not match"):
        LPIPS()


def test_missing_weights_name_the_file(torch_home):
    from vcbench.metrics.perceptual import LPIPS

    with pytest.raises(WeightsError, match=ALEX_FILE):
        LPIPS(allow_unverified=True)


def test_wrong_state_dict_is_a_weights_error(torch_home):
    from vcbench.metrics.perceptual import LPIPS

    torch.save({"features.0.weight": torch.zeros(1)}, torch_home / "hub" / "checkpoints" / ALEX_FILE)
    with pytest.raises(WeightsError, match="not an AlexNet"):
        LPIPS(allow_unverified=True)


@requires_gpu
@pytest.mark.gpu
def test_cuda_matches_cpu(alex_home, sample_frames):
    from vcbench.metrics.perceptual import LPIPS

    gt = sample_frames["bikes"][:3]
    pred = degrade(gt, "hue", seed=1)
    cpu = LPIPS("cpu", allow_unverified=True).distances(_t(pred), _t(gt))
    gpu = LPIPS("cuda", allow_unverified=True).distances(_t(pred).cuda(), _t(gt).cuda()).cpu()
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), rtol=0, atol=1e-4)


def test_linear_layers_come_from_the_installed_package():
    from vcbench.metrics.perceptual import lpips_linear_weights_path

    p = lpips_linear_weights_path()
    assert p.name == "alex.pth" and p.parent.name == "v0.1" and p.is_file()


def test_default_chunks_follow_frame_size_and_give_the_same_values(alex_home, sample_frames, monkeypatch):
    """Without --batch-size the pairs per forward come from the frame size and the device's budget
    (480p: 2 pairs, 1080p: 1 on the CPU); any chunking gives the frame-by-frame values."""
    from vcbench.metrics import sizing
    from vcbench.metrics.perceptual import LPIPS, pairs_per_chunk

    cpu = torch.device("cpu")
    assert pairs_per_chunk(1080, 1920, cpu) == 1 and pairs_per_chunk(480, 854, cpu) == 2
    assert pairs_per_chunk(144, 256, cpu) > 8
    gt = sample_frames["bikes"][:5]
    pred = degrade(gt, "blur+hue", seed=1)
    single = LPIPS(allow_unverified=True, batch_size=1).distances(_t(pred), _t(gt)).numpy()
    auto = LPIPS(allow_unverified=True)
    np.testing.assert_allclose(auto.distances(_t(pred), _t(gt)).numpy(), single, rtol=0, atol=1e-5)
    monkeypatch.setitem(sizing.WORK_BYTES, "cpu", 120 * 68 * 160 * 2)  # two pairs of these frames per forward
    assert pairs_per_chunk(68, 160, cpu) == 2
    np.testing.assert_allclose(auto.distances(_t(pred), _t(gt)).numpy(), single, rtol=0, atol=1e-5)
