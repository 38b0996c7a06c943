"""Augmentation and pseudo-video: determinism per (seed, clip id), the geometry of each transform,
and that pseudo-video really moves by the smooth flow it records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vcbench.trainset.augment import (FIELD_SIGMA, augment_video, draw_pseudo_params, draw_video_params,
                                      pseudo_video, rng_for, smooth_field)
from vcbench.trainset.clips import resize_fill
from vcbench.frames import Clip, sample_videos
from vcbench.stills import list_stills


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    out = []
    for i, f in enumerate(Clip("c", sample_videos()["carphone_pristine"], "video").iter_frames()):
        if i == 5:
            break
        out.append(resize_fill(f, 64, 112))
    return np.stack(out)


def test_rng_is_a_function_of_seed_and_clip_id():
    a = rng_for(3, "bikes_s000_c000_v001").integers(0, 2**32, 4)
    b = rng_for(3, "bikes_s000_c000_v001").integers(0, 2**32, 4)
    c = rng_for(3, "bikes_s000_c000_v002").integers(0, 2**32, 4)
    d = rng_for(4, "bikes_s000_c000_v001").integers(0, 2**32, 4)
    assert (a == b).all() and not (a == c).all() and not (a == d).all()


def test_smooth_field_is_smooth_and_scaled():
    f = smooth_field(7, 216, 384, 5.0)
    assert f.shape == (2, 216, 384) and f.dtype == np.float32
    assert np.abs(f).max(axis=(1, 2)) == pytest.approx([5.0, 5.0], rel=1e-6)
    # sigma-50 smoothing: neighbouring pixels differ by a tiny fraction of the amplitude
    assert np.abs(np.diff(f, axis=2)).max() < 0.05 * 5.0
    assert np.abs(np.diff(f, axis=1)).max() < 0.05 * 5.0
    assert FIELD_SIGMA == 50.0
    assert np.array_equal(f, smooth_field(7, 216, 384, 5.0))
    assert not np.array_equal(f, smooth_field(8, 216, 384, 5.0))


def test_crop_flip_and_gain_do_what_params_say(clip):
    t, h, w, _ = clip.shape
    params = {"crop": [0, 0, h, w], "flip": True, "elastic_amplitude": 0.0, "elastic_seed": 0,
              "brightness_gain": 1.0, "noise_sigma": 0.0, "noise_seed": 0}
    assert np.array_equal(augment_video(clip, params), clip[:, :, ::-1])
    params.update(flip=False, brightness_gain=0.5)
    expect = np.clip(np.rint(clip.astype(np.float32) * 0.5), 0, 255).astype(np.uint8)
    assert np.array_equal(augment_video(clip, params), expect)
    import cv2

    params.update(brightness_gain=1.0, crop=[4, 8, 48, 84])
    out = augment_video(clip, params)
    expect = cv2.resize(clip[0, 4:52, 8:92], (w, h), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out[0], expect)


def test_video_augmentation_is_deterministic_and_varied(clip):
    t, h, w, _ = clip.shape
    p1 = draw_video_params(rng_for(0, "x_v001"), h, w)
    p2 = draw_video_params(rng_for(0, "x_v001"), h, w)
    assert p1 == p2
    a, b = augment_video(clip, p1), augment_video(clip, p2)
    assert a.shape == clip.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    p3 = draw_video_params(rng_for(0, "x_v002"), h, w)
    assert p3 != p1 and not np.array_equal(augment_video(clip, p3), a)
    ch, cw = p1["crop"][2:]
    assert 0.8 * h - 1 <= ch <= h and 0.8 * w - 1 <= cw <= w and 0.8 <= p1["brightness_gain"] <= 1.2


def test_pseudo_video_moves_by_its_recorded_flow():
    """frame t = still warped by t*(field + drift), so the flow from frame 1 to frame 0 is that field:
    OpenCV DIS on the generated frames recovers it to a fraction of a pixel."""
    from vcbench.flow.classic import DISFlow

    still = list_stills(None)[1].load()  # chelsea
    params = draw_pseudo_params(rng_for(0, "still-chelsea_v000"), 3)
    params["brightness_gains"] = [1.0, 1.0, 1.0]
    params["field_amplitude"] = 1.5
    frames = pseudo_video(still, params, 3, 216, 384)
    assert frames.shape == (3, 216, 384, 3)
    assert np.array_equal(frames[0], resize_fill(still, 216, 384)[:, ::-1] if params["flip"] else resize_fill(still, 216, 384))
    field = smooth_field(params["field_seed"], 216, 384, 1.5)
    field[0] += params["drift"][0]
    field[1] += params["drift"][1]
    t = torch.from_numpy(frames.transpose(0, 3, 1, 2).copy())
    est = DISFlow()(t[1:2], t[0:1])[0].numpy()
    inner = (slice(16, -16), slice(16, -16))  # borders are clamped by the warp
    epe = np.hypot(est[0][inner] - field[0][inner], est[1][inner] - field[1][inner])
    assert np.median(epe) < 0.25, np.median(epe)
    again = pseudo_video(still, params, 3, 216, 384)
    assert np.array_equal(frames, again)
