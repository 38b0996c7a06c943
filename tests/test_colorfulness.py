"""Colourfulness against the paper's formula (written out in numpy), GT value and ratio beside it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import degrade
from skimage import data

from vcbench.metrics.colorfulness import Colorfulness, closeness, colorfulness_frames


def _t(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()


def _paper(img: np.ndarray) -> float:
    """Hasler & Suesstrunk 2003, eq. 3 with population std and signed opponents, in numpy."""
    r, g, b = (img[..., i].astype(np.float64) for i in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    return math.hypot(np.std(rg), np.std(yb)) + 0.3 * math.hypot(np.mean(rg), np.mean(yb))


def test_matches_the_paper_on_stills_and_video():
    stills = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    for img in stills:
        got = colorfulness_frames(_t(img[None])).item()
        assert got == pytest.approx(_paper(img), abs=1e-9)
    # The stills differ a lot in colourfulness: the metric must separate them.
    vals = [_paper(i) for i in stills]
    assert max(vals) > 1.5 * min(vals)


def test_signed_opponents_not_abs():
    # Half pure red, half pure green: rg = +-200 (signed: std 200, mean 0), yb = 100 everywhere.
    # Signed gives 200 + 0.3 * 100 = 230; the abs() variant some code uses would give 0.3 * hypot(200, 100).
    img = np.zeros((8, 8, 3), np.uint8)
    img[:4, :, 0] = 200
    img[4:, :, 1] = 200
    v = colorfulness_frames(_t(img[None])).item()
    assert v == pytest.approx(230.0, abs=1e-9)
    assert v == pytest.approx(_paper(img), abs=1e-9)


def test_gray_frames_are_zero(sample_frames):
    gt = sample_frames["bikes"][:2]
    gray = np.repeat(gt.mean(axis=-1, keepdims=True).astype(np.uint8), 3, axis=-1)
    assert colorfulness_frames(_t(gray)).tolist() == [0.0, 0.0]


def test_metric_reports_pred_gt_and_ratio(sample_frames):
    m = Colorfulness()
    exp_pred, exp_gt = {}, {}
    for i, (name, gt) in enumerate(sample_frames.items()):
        gt = gt[:5]
        pred = degrade(gt, "chroma+hue", seed=i)
        m.update(_t(pred[:3]), _t(gt[:3]))
        m.update(_t(pred[3:]), _t(gt[3:]))
        m.end_clip(name)
        exp_pred[name] = np.mean([_paper(f) for f in pred])
        exp_gt[name] = np.mean([_paper(f) for f in gt])
        assert m.per_frame[name] == pytest.approx([_paper(f) for f in pred], abs=1e-9)
        assert m.gt_per_frame[name] == pytest.approx([_paper(f) for f in gt], abs=1e-9)
        assert m.per_clip[name] == pytest.approx(exp_pred[name], abs=1e-9)
        assert m.gt_per_clip[name] == pytest.approx(exp_gt[name], abs=1e-9)
        assert m.ratio_per_clip[name] == pytest.approx(exp_pred[name] / exp_gt[name], rel=1e-12)
    pred_ds, gt_ds = np.mean(list(exp_pred.values())), np.mean(list(exp_gt.values()))
    assert m.compute() == pytest.approx(pred_ds, abs=1e-9)
    assert m.gt_compute() == pytest.approx(gt_ds, abs=1e-9)
    assert m.ratio() == pytest.approx(pred_ds / gt_ds, rel=1e-12)
    assert m.closeness() == pytest.approx(abs(math.log(pred_ds / gt_ds)), rel=1e-12)
    assert Colorfulness.higher_is_better is None


def test_closeness_ranks_by_log_ratio():
    assert closeness(20.0, 20.0) == 0.0
    assert closeness(10.0, 20.0) == pytest.approx(closeness(40.0, 20.0))  # half and double are equally far
    assert closeness(0.0, 20.0) is None and closeness(5.0, None) is None


def test_gray_gt_gives_no_ratio(sample_frames):
    gt = sample_frames["bikes"][:2]
    gray = np.repeat(gt.mean(axis=-1, keepdims=True).astype(np.uint8), 3, axis=-1)
    m = Colorfulness()
    m.update(_t(gt), _t(gray))
    m.end_clip("g")
    assert m.gt_per_clip["g"] == 0.0 and m.ratio_per_clip["g"] is None and m.ratio() is None


def test_batched_equals_frame_by_frame(sample_frames):
    """Tolerance 1e-10 (float64 reductions over the same pixels)."""
    gt = sample_frames["bigbuckbunny"][:6]
    pred = degrade(gt, "hue", seed=2)
    a, b = Colorfulness(), Colorfulness()
    a.update(_t(pred), _t(gt))
    for k in range(6):
        b.update(_t(pred[k:k + 1]), _t(gt[k:k + 1]))
    a.end_clip("c")
    b.end_clip("c")
    np.testing.assert_allclose(a.per_frame["c"], b.per_frame["c"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.gt_per_frame["c"], b.gt_per_frame["c"], rtol=0, atol=1e-10)
