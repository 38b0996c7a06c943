"""Clip extraction on real video: fill-and-crop geometry, shot boundaries from PySceneDetect,
filters with reasons, one decode per frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import write_video

from vcbench.trainset.clips import ClipSpec, clip_measures, extract_clips, judge, resize_fill
from vcbench.trainset.sources.base import SourceVideo
from vcbench.frames import Clip, sample_videos


def _frames(name: str, n: int, size=(72, 128)) -> np.ndarray:
    out = []
    for i, f in enumerate(Clip(name, sample_videos()[name], "video").iter_frames()):
        if i >= n:
            break
        out.append(resize_fill(f, *size))
    return np.stack(out)


def _write_mp4(path: Path, frames: np.ndarray) -> Path:
    """Lossless-ish H.264 (yuv444p, crf 0)."""
    return write_video(path, frames, "libx264", "yuv444p", stream_options={"crf": "0", "preset": "ultrafast"})


def test_resize_fill_covers_then_crops_centre():
    img = np.zeros((720, 1280, 3), np.uint8)
    img[:, 640:] = 255  # right half white
    out = resize_fill(img, 216, 384)
    assert out.shape == (216, 384, 3)
    assert out[:, :190].max() == 0 and out[:, 194:].min() == 255  # boundary stays in the middle
    # 4:3 input into 16:9: full width kept, top and bottom cut equally
    tall = np.zeros((480, 640, 3), np.uint8)
    tall[:100] = 200
    tall[-100:] = 100
    out = resize_fill(tall, 216, 384)  # scale 0.6 -> 288x384, crop 36 rows top and bottom
    assert out.shape == (216, 384, 3)
    # bands of 100 rows become 60, of which 36 are cut: 24 rows left at each edge
    assert (out[:23] == 200).all() and (out[-23:] == 100).all()
    assert out[25:-25].max() == 0


def test_shot_boundary_never_inside_a_clip(tmp_path):
    a = _frames("carphone_pristine", 40)
    b = _frames("bigbuckbunny", 40)
    video = _write_mp4(tmp_path / "cut.mp4", np.concatenate([a, b]))
    spec = ClipSpec(length=10, height=72, width=128, min_scene_len=5)
    clips = list(extract_clips(SourceVideo("cut", video, "local", "x", "y"), spec))
    assert clips, "no clip extracted"
    for c in clips:
        assert c.frames.shape == (10, 72, 128, 3)
        assert c.end <= 40 or c.start >= 40, f"clip {c.clip_id} spans the cut at 40"
    shots = {c.shot for c in clips}
    assert shots == {0, 1}
    assert [c.start for c in clips if c.shot == 0] == [0, 10, 20, 30]
    assert min(c.start for c in clips if c.shot == 1) >= 40
    assert all(c.clip_id.startswith(f"cut_s{c.shot:03d}_c") for c in clips)
    # the clip's pixels are the decoded frames resized (lossless encode): first clip = a[0:10]
    np.testing.assert_allclose(clips[0].frames.astype(int), a[:10].astype(int), atol=3)


def test_filters_reject_dark_gray_static_with_reasons():
    spec = ClipSpec()
    real = _frames("carphone_pristine", 10)
    ok, reason = judge(clip_measures(real), spec)
    assert ok and reason == "accepted"
    dark = (real.astype(np.float32) * 0.08).astype(np.uint8)
    ok, reason = judge(clip_measures(dark), spec)
    assert not ok and reason.startswith("too dark")
    gray = np.repeat(real.mean(axis=3, keepdims=True).astype(np.uint8), 3, axis=3)
    m = clip_measures(gray)
    assert m["chroma"] < 0.5
    ok, reason = judge(m, spec)
    assert not ok and reason.startswith("near-gray")
    static = np.repeat(real[:1], 10, axis=0)
    m = clip_measures(static)
    assert m["motion"] == 0.0
    ok, reason = judge(m, spec)
    assert not ok and reason.startswith("near-static")


def test_each_frame_decoded_once(monkeypatch):
    calls = []
    real_iter = Clip.iter_frames

    def counting(self):
        calls.append(self.path)
        yield from real_iter(self)

    monkeypatch.setattr(Clip, "iter_frames", counting)
    path = sample_videos()["carphone_pristine"]
    clips = list(extract_clips(SourceVideo("carphone", path, "sample", "x", "y"), ClipSpec(length=25, height=36, width=64)))
    assert len(calls) == 1
    assert [c.start for c in clips] == [0, 25, 50, 75]  # 120 frames, one shot, no overlap
