"""Colourfulness against the paper's formula (written out in numpy), GT value (the suite's twin) and ratio beside it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import degrade
from skimage import data

from vcbench.cli.score import format_table
from vcbench.metrics.colorfulness import Colorfulness, colorfulness_frames
from vcbench.metrics.suite import MetricSuite
from vcbench.reports.stats import closeness


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
    """The prediction's values from the metric, the GT's from the suite's GT twin (the one GT path)."""
    suite = MetricSuite(["colorfulness"])
    m, twin = suite.metrics["colorfulness"], suite.gt_twins["colorfulness"]
    exp_pred, exp_gt = {}, {}
    for i, (name, gt) in enumerate(sample_frames.items()):
        gt = gt[:5]
        pred = degrade(gt, "chroma+hue", seed=i)
        suite.update(_t(pred[:3]), _t(gt[:3]), clip=name)
        suite.update(_t(pred[3:]), _t(gt[3:]))
        suite.end_clip(name)
        exp_pred[name] = np.mean([_paper(f) for f in pred])
        exp_gt[name] = np.mean([_paper(f) for f in gt])
        assert m.per_frame[name] == pytest.approx([_paper(f) for f in pred], abs=1e-9)
        assert twin.per_frame[name] == pytest.approx([_paper(f) for f in gt], abs=1e-9)
        assert m.per_clip[name] == pytest.approx(exp_pred[name], abs=1e-9)
        assert twin.per_clip[name] == pytest.approx(exp_gt[name], abs=1e-9)
    res = suite.result()
    for name in sample_frames:
        assert res.gt_per_clip[name]["colorfulness"] == twin.per_clip[name]
        ratio = res.per_clip[name]["colorfulness"] / res.gt_per_clip[name]["colorfulness"]
        assert ratio == pytest.approx(exp_pred[name] / exp_gt[name], rel=1e-12)
    pred_ds, gt_ds = np.mean(list(exp_pred.values())), np.mean(list(exp_gt.values()))
    assert res.metrics["colorfulness"] == pytest.approx(pred_ds, abs=1e-9)
    assert res.gt_metrics["colorfulness"] == pytest.approx(gt_ds, abs=1e-9)
    assert res.metrics["colorfulness"] / res.gt_metrics["colorfulness"] == pytest.approx(pred_ds / gt_ds, rel=1e-12)
    assert closeness(res.metrics["colorfulness"], res.gt_metrics["colorfulness"]) == pytest.approx(
        abs(math.log(pred_ds / gt_ds)), rel=1e-12)
    assert Colorfulness.higher_is_better is None


def test_gray_gt_gives_no_ratio(sample_frames):
    gt = sample_frames["bikes"][:2]
    gray = np.repeat(gt.mean(axis=-1, keepdims=True).astype(np.uint8), 3, axis=-1)
    suite = MetricSuite(["colorfulness"])
    suite.update(_t(gt), _t(gray), clip="g")
    res = suite.result()
    assert res.gt_per_clip["g"]["colorfulness"] == 0.0 and res.gt_metrics["colorfulness"] == 0.0
    assert res.metrics["colorfulness"] > 0 and "ratio" not in format_table(res)
    assert closeness(res.metrics["colorfulness"], res.gt_metrics["colorfulness"]) is None


def test_batched_equals_frame_by_frame(sample_frames):
    """Tolerance 1e-10 (float64 reductions over the same pixels); the GT's values through the twin."""
    gt = sample_frames["bigbuckbunny"][:6]
    pred = degrade(gt, "hue", seed=2)
    a, b = MetricSuite(["colorfulness"]), MetricSuite(["colorfulness"])
    a.update(_t(pred), _t(gt))
    for k in range(6):
        b.update(_t(pred[k:k + 1]), _t(gt[k:k + 1]))
    a.end_clip("c")
    b.end_clip("c")
    np.testing.assert_allclose(a.metrics["colorfulness"].per_frame["c"], b.metrics["colorfulness"].per_frame["c"],
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.gt_twins["colorfulness"].per_frame["c"], b.gt_twins["colorfulness"].per_frame["c"],
                               rtol=0, atol=1e-10)
