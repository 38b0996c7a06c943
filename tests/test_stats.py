"""Bootstrap intervals over clips and paired tests between two runs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from vcbench.errors import VcbenchError
from vcbench.reports.db import RunRecord
from vcbench.reports.stats import (bootstrap_ci, closeness, compare_runs, direction, metric_ci, paired_test,
                                   ranking_values)


def test_bootstrap_ci_matches_scipy_percentile_bootstrap():
    x = np.random.default_rng(1).gamma(2.0, 3.0, size=30)
    ours = bootstrap_ci(x, n_resamples=20_000, seed=3)
    ref = sps.bootstrap((x,), np.mean, n_resamples=20_000, method="percentile", confidence_level=0.95,
                        random_state=np.random.default_rng(4)).confidence_interval
    width = ref.high - ref.low
    assert ours.mean == pytest.approx(x.mean())
    assert ours.lo == pytest.approx(ref.low, abs=0.03 * width)
    assert ours.hi == pytest.approx(ref.high, abs=0.03 * width)
    assert ours.n == 30 and ours.lo < ours.mean < ours.hi


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    covered = 0
    trials = 300
    for t in range(trials):
        x = rng.normal(5.0, 2.0, size=40)
        ci = bootstrap_ci(x, n_resamples=2000, seed=t)
        covered += ci.lo <= 5.0 <= ci.hi
    # percentile bootstrap under-covers a little at n=40; 95% nominal, binomial sd ~1.3%
    assert 0.89 <= covered / trials <= 0.98


def test_bootstrap_is_deterministic_and_handles_degenerate_input():
    x = [1.0, 2.0, None, float("nan"), 4.0]
    assert bootstrap_ci(x) == bootstrap_ci(x)
    assert bootstrap_ci(x).n == 3
    one = bootstrap_ci([3.0])
    assert (one.mean, one.lo, one.hi, one.n) == (3.0, None, None, 1)
    assert bootstrap_ci([None]).mean is None
    # interval width shrinks like 1/sqrt(n)
    rng = np.random.default_rng(0)
    w = [(lambda c: c.hi - c.lo)(bootstrap_ci(rng.normal(size=n), n_resamples=4000)) for n in (25, 400)]
    assert w[1] == pytest.approx(w[0] / 4, rel=0.3)


def test_large_sets_are_chunked_not_materialised():
    x = np.random.default_rng(0).normal(size=20_000)  # 10k resamples x 20k clips would be 1.6 GB at once
    ci = bootstrap_ci(x, n_resamples=2000)
    se = x.std() / np.sqrt(x.size)
    assert ci.hi - ci.lo == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_paired_test_detects_a_real_shift_hidden_by_clip_variance():
    rng = np.random.default_rng(11)
    base = rng.normal(25.0, 4.0, size=30)  # clips differ a lot in difficulty
    a = {f"c{i}": v + 0.3 + rng.normal(0, 0.1) for i, v in enumerate(base)}
    b = {f"c{i}": v + rng.normal(0, 0.1) for i, v in enumerate(base)}
    # an unpaired view cannot tell them apart...
    assert sps.ttest_ind(list(a.values()), list(b.values())).pvalue > 0.5
    # ...the paired one can
    res = paired_test(a, b, metric="psnr")
    assert res.n == 30 and res.diff == pytest.approx(0.3, abs=0.06)
    assert res.lo > 0 and res.significant and res.p_value < 1e-4
    assert res.better == "A"
    assert res.p_value == pytest.approx(sps.wilcoxon(np.array(list(a.values())) - np.array(list(b.values()))).pvalue)
    # lower-is-better metric: the larger value loses
    assert paired_test(a, b, metric="lpips").better == "B"


def test_paired_test_does_not_call_noise_significant():
    rng = np.random.default_rng(5)
    false_pos_ci = false_pos_p = 0
    trials = 400
    for t in range(trials):
        base = rng.normal(25.0, 4.0, size=20)
        a = {f"c{i}": v + rng.normal(0, 0.5) for i, v in enumerate(base)}
        b = {f"c{i}": v + rng.normal(0, 0.5) for i, v in enumerate(base)}
        r = paired_test(a, b, metric="psnr", n_resamples=1000, seed=t)
        false_pos_ci += r.significant
        false_pos_p += r.p_value < 0.05
    # nominal 5%; the percentile bootstrap runs a little liberal at n=20 (binomial sd ~1.1% here)
    assert false_pos_ci / trials <= 0.10 and 0.02 <= false_pos_p / trials <= 0.08


def test_paired_test_needs_two_shared_clips():
    with pytest.raises(VcbenchError, match="share 1"):
        paired_test({"a": 1.0, "b": 2.0}, {"b": 1.0, "c": 3.0}, metric="psnr")


def test_directions_follow_design():
    assert [direction(m) for m in ("psnr", "ssim", "top1", "top5")] == ["higher"] * 4
    assert [direction(m) for m in ("lpips", "fid", "kid", "warp_error", "flicker", "cdc")] == ["lower"] * 6
    assert direction("colorfulness") == "closer"


def _run(model, psnr, colorf, gt_colorf, protocol="vcbench-v1/dis", clips=None):
    clips = clips or [f"c{i}" for i in range(len(psnr))]
    return RunRecord(
        model=model, dataset="sample", protocol=protocol,
        metrics={"psnr": float(np.mean(psnr)), "colorfulness": float(np.mean(colorf)), "fid": 40.0},
        per_clip={c: {"psnr": p, "colorfulness": k} for c, p, k in zip(clips, psnr, colorf)},
        gt_per_clip={c: {"colorfulness": g} for c, g in zip(clips, gt_colorf)},
        gt_metrics={"colorfulness": float(np.mean(gt_colorf))}, n_clips=len(clips), id=hash(model) % 1000)


def test_colourfulness_ranks_by_closeness_to_gt():
    gt = [30.0, 40.0, 50.0, 20.0]
    over = _run("over", [20, 21, 22, 23], [60.0, 80.0, 100.0, 40.0], gt)  # twice as colourful as GT
    near = _run("near", [20, 21, 22, 23], [27.0, 36.0, 45.0, 18.0], gt)   # 10% less colourful
    assert ranking_values(near, "colorfulness")["c0"] == pytest.approx(abs(np.log(0.9)))
    res = {r.metric: r for r in compare_runs(over, near)}
    assert res["colorfulness"].better == "B" and res["colorfulness"].quantity == "|log(colorfulness/GT)|"
    assert res["psnr"].better == "tie" and res["psnr"].p_value == 1.0
    assert res["fid"].n == 0 and "pooled" in res["fid"].note and res["fid"].better == "tie"
    assert closeness(-1.0, 10.0) is None
    assert closeness(20.0, 20.0) == 0.0 and closeness(5.0, None) is None
    assert closeness(10.0, 20.0) == pytest.approx(closeness(40.0, 20.0))  # half and double are equally far
    ci = metric_ci(over, "colorfulness")
    assert ci.mean == pytest.approx(70.0) and ci.lo < 70 < ci.hi
    assert metric_ci(over, "fid") is None


def test_compare_refuses_mixed_protocols_and_disjoint_clips():
    a = _run("a", [20, 21, 22], [30, 30, 30], [30, 30, 30])
    b = _run("b", [20, 21, 22], [30, 30, 30], [30, 30, 30], protocol="vcbench-v1/raft")
    with pytest.raises(VcbenchError, match="differ in protocol"):
        compare_runs(a, b)
    c = _run("c", [20, 21, 22], [30, 30, 30], [30, 30, 30], clips=["x", "y", "c0"])
    with pytest.raises(VcbenchError, match="share 1 clip"):
        compare_runs(a, c)


def test_colourless_prediction_is_infinitely_far_and_still_tested():
    gt = [30.0, 40.0, 50.0, 20.0, 35.0, 45.0, 25.0]
    gray = _run("gray", [20] * 7, [0.0] * 7, gt)
    near = _run("near", [21] * 7, [g * 0.9 for g in gt], gt)
    assert closeness(0.0, 30.0) == float("inf") and closeness(5.0, 0.0) is None
    res = {r.metric: r for r in compare_runs(near, gray)}
    col = res["colorfulness"]
    assert col.better == "A" and col.diff == float("-inf") and col.lo is None and "infinite" in col.note
    # ranks only: 7 clips all favouring A gives the exact two-sided p = 2 / 2**7
    assert col.p_value == pytest.approx(2 / 2 ** 7) and col.significant
    assert col.as_dict()["diff"] is None
    both = compare_runs(gray, gray)
    assert {r.metric: r for r in both}["colorfulness"].better == "tie"


def test_few_clips_are_never_called_significant():
    a = {f"c{i}": 30.0 + i for i in range(4)}
    b = {f"c{i}": 20.0 + i for i in range(4)}
    r = paired_test(a, b, metric="psnr")
    assert r.lo == r.hi == 10.0 and r.p_value == pytest.approx(0.125)
    assert r.better == "A" and not r.significant and "only 4 clips" in r.note


def test_unmeasured_metrics_say_why():
    a = _run("a", [20, 21, 22], [30, 30, 30], [30, 30, 30])
    b = _run("b", [21, 22, 23], [30, 30, 30], [30, 30, 30])
    a.metrics["lpips"] = b.metrics["lpips"] = None
    a.unavailable = {"lpips": "weights file alexnet-owt-7be5be79.pth (alexnet) is not in the cache. Run x"}
    res = {r.metric: r for r in compare_runs(a, b)}
    assert res["lpips"].n == 0 and res["lpips"].note.startswith("not measured in A: weights file alexnet")
