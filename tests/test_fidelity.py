"""PSNR and SSIM against the textbook / TCVC formula and skimage, on real frames with real degradations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import degrade, requires_gpu
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vcbench.errors import InputError
from vcbench.metrics.fidelity import PSNR, PSNR_CAP_DB, SSIM, psnr_frames, ssim_frames


def _t(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()


def _tcvc_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula as TCVC's calculate_psnr writes it (float64, peak 255)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))


def _sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=-1)


@pytest.fixture(scope="module")
def pairs(sample_frames):
    out = []
    for i, (name, gt) in enumerate(sample_frames.items()):
        for kind in ("jpeg", "blur+hue", "chroma"):
            out.append((f"{name}/{kind}", gt[:4], degrade(gt[:4], kind, seed=i)))
    return out


def test_psnr_matches_textbook_and_skimage(pairs):
    for label, gt, pred in pairs:
        got = psnr_frames(_t(pred), _t(gt)).numpy()
        for k in range(len(gt)):
            ref = _tcvc_psnr(pred[k], gt[k])
            assert abs(got[k] - ref) < 1e-6, label
            assert abs(got[k] - peak_signal_noise_ratio(gt[k], pred[k], data_range=255)) < 1e-6, label
        assert 15 < got.mean() < 45, label  # real degradations give ordinary PSNRs


def test_psnr_identical_frames_are_capped(sample_frames):
    gt = sample_frames["bikes"][:3]
    got = psnr_frames(_t(gt), _t(gt))
    assert got.tolist() == [PSNR_CAP_DB] * 3
    one_off = gt.copy()
    one_off[0, 0, 0, 0] ^= 1
    v = psnr_frames(_t(one_off[:1]), _t(gt[:1])).item()
    assert v == pytest.approx(_tcvc_psnr(one_off[0], gt[0]), abs=1e-6) and v < PSNR_CAP_DB


def test_ssim_matches_skimage(pairs):
    for label, gt, pred in pairs:
        got = ssim_frames(_t(pred), _t(gt)).numpy()
        ref = np.array([_sk_ssim(pred[k], gt[k]) for k in range(len(gt))])
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6, err_msg=label)
        assert (ref < 0.999).all() and (ref > 0.2).all(), label


@pytest.mark.parametrize("size", [(11, 11), (13, 20), (17, 12), (31, 45)])
def test_ssim_small_and_odd_sizes_match_skimage(sample_frames, size):
    # Frames barely larger than the window exercise scipy's "reflect" border and the crop.
    gt = sample_frames["bigbuckbunny"][:2, : size[0], : size[1]]
    pred = degrade(gt, "jpeg+hue", seed=3)
    got = ssim_frames(_t(pred), _t(gt)).numpy()
    ref = [_sk_ssim(pred[k], gt[k]) for k in range(2)]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_ssim_rejects_frames_below_the_window(sample_frames):
    gt = sample_frames["bikes"][:1, :10, :40]
    with pytest.raises(InputError, match="11x11"):
        ssim_frames(_t(gt), _t(gt))


def test_mismatched_shapes_are_an_input_error(sample_frames):
    a = _t(sample_frames["bikes"][:2])
    with pytest.raises(InputError):
        psnr_frames(a, a[:1])


@pytest.mark.parametrize("cls", [PSNR, SSIM])
def test_batched_equals_frame_by_frame(sample_frames, cls):
    """Tolerance 1e-10: the batched path runs the same float64 operations per frame."""
    gt = sample_frames["bigbuckbunny"][:6]
    pred = degrade(gt, "jpeg+chroma", seed=1)
    batched, single = cls(), cls()
    batched.update(_t(pred), _t(gt))
    for k in range(len(gt)):
        single.update(_t(pred[k:k + 1]), _t(gt[k:k + 1]))
    batched.end_clip("c")
    single.end_clip("c")
    np.testing.assert_allclose(batched.per_frame["c"], single.per_frame["c"], rtol=0, atol=1e-10)


def test_clip_and_dataset_values_are_means(sample_frames):
    m = PSNR()
    expected = {}
    for i, (name, gt) in enumerate(sample_frames.items()):
        pred = degrade(gt[:3], "blur", seed=i)
        m.update(_t(pred[:2]), _t(gt[:2]))
        m.update(_t(pred[2:]), _t(gt[2:3]))
        m.end_clip(name)
        expected[name] = np.mean([_tcvc_psnr(pred[k], gt[k]) for k in range(3)])
    for name, v in expected.items():
        assert m.per_clip[name] == pytest.approx(v, abs=1e-9)
        assert len(m.per_frame[name]) == 3
    assert m.compute() == pytest.approx(np.mean(list(expected.values())), abs=1e-9)


@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("cls", [PSNR, SSIM])
def test_cuda_matches_cpu(sample_frames, cls):
    gt = sample_frames["bikes"][:4]
    pred = degrade(gt, "jpeg", seed=0)
    cpu, gpu = cls("cpu"), cls("cuda")
    cpu.update(_t(pred), _t(gt))
    gpu.update(_t(pred).cuda(), _t(gt).cuda())
    np.testing.assert_allclose(gpu._current, cpu._current, rtol=0, atol=1e-9)


@pytest.mark.parametrize("strip", [1, 7, 64])
def test_cpu_ssim_strips_and_threads_match_skimage(sample_frames, monkeypatch, strip):
    """The CPU path filters row strips with a halo on a thread pool: any strip height (one row, one
    that does not divide the frame, the default) and one or two threads give skimage's values."""
    import vcbench.metrics.fidelity as fid

    gt = sample_frames["bigbuckbunny"][:3, :41]
    pred = degrade(gt, "jpeg+hue", seed=5)
    ref = np.array([_sk_ssim(pred[k], gt[k]) for k in range(3)])
    monkeypatch.setattr(fid, "SSIM_STRIP_ROWS", strip)
    for threads in (1, 2):
        monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
        got = ssim_frames(_t(pred), _t(gt)).numpy()
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_torch_float64_path_equals_the_cpu_path(sample_frames):
    """The CUDA path's float64 torch filter, run on the CPU, gives the CPU path's (skimage's) values."""
    from vcbench.metrics.fidelity import _gaussian_taps, _ssim_chunk

    gt = sample_frames["bikes"][:3]
    pred = degrade(gt, "blur+hue", seed=2)
    torch_path = _ssim_chunk(_t(pred).double(), _t(gt).double(), _gaussian_taps(torch.device("cpu")))
    np.testing.assert_allclose(torch_path.numpy(), ssim_frames(_t(pred), _t(gt)).numpy(), rtol=0, atol=1e-12)


def test_cpu_ssim_equals_skimage_to_1e12_at_854x480(sample_frames):
    """At DAVIS's frame size the CPU path (OpenCV's float64 Gaussian on the integer planes, strips on
    threads) stays within 1e-12 of skimage per frame, on real frames and a realistic degradation."""
    import cv2

    gt = np.stack([cv2.resize(f, (854, 480), interpolation=cv2.INTER_CUBIC) for f in sample_frames["bikes"][:2]])
    pred = degrade(gt, "jpeg+hue", seed=11)
    got = ssim_frames(_t(pred), _t(gt)).numpy()
    ref = np.array([_sk_ssim(pred[k], gt[k]) for k in range(2)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert (ref < 0.99).all() and (ref > 0.3).all()
