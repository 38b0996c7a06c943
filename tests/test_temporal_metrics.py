"""warp_error, flicker and cdc against independent per-frame numpy loops on real degraded frames.

The warp-error loop follows Lai et al.'s `evaluate_WarpError.py`: it reads the .flo files itself,
reads the occlusion PNG as value/255 over three channels, warps with a numpy Resample2d, and divides
the masked squared error by sum(noc) (H*W*3 when empty). The CDC reference is TCVC's
`compute_JS_bgr` formula with cv2.calcHist and scipy.stats.entropy.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import scipy.stats
import torch
from conftest import degrade, requires_gpu
from test_flow import lai_occlusion_for_pair, resample_np, to_t

from vcbench.errors import WeightsError
from vcbench.flow.registry import get_estimator
from vcbench.flow.flo import write_flo
from vcbench.flow.pairs import FlowPairs, flow_pairs
from vcbench.metrics.context import FrameContext
from vcbench.metrics.cdc import CDC
from vcbench.metrics.suite import MetricSuite
from vcbench.metrics.temporal import Flicker, WarpError


def shift_and_noise(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = frames.astype(np.float64) + np.array([10.0, -6.0, 4.0]) + rng.normal(0, 4.0, frames.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


PREDICTIONS = {"shift_noise": shift_and_noise, "hue": lambda f: degrade(f, "hue", seed=3),
               "chroma_jpeg": lambda f: degrade(f, "chroma+jpeg")}


def _read_flo_np(path) -> np.ndarray:
    with open(path, "rb") as f:
        assert np.fromfile(f, np.float32, count=1)[0] == 202021.25
        w, h = (int(v) for v in np.fromfile(f, np.int32, count=2))
        return np.fromfile(f, np.float32, count=2 * w * h).reshape(h, w, 2)


@pytest.fixture(scope="module")
def lai_folders(tmp_path_factory, sample_frames):
    """Per clip: DIS flow of the GT written in Lai's layout, once with fw_occlusion PNGs (made by the
    numpy transcription of Lai's detect_occlusion) and once with bw_flow only."""
    root = tmp_path_factory.mktemp("lai")
    est = get_estimator("dis")
    for clip, frames in sample_frames.items():
        g = to_t(frames)
        fw = est(g[:-1], g[1:]).permute(0, 2, 3, 1).numpy()
        bw = est(g[1:], g[:-1]).permute(0, 2, 3, 1).numpy()
        for t in range(len(fw)):
            for sub in ("occ", "bw"):
                write_flo(root / sub / "fw_flow" / clip / f"{t:05d}.flo", fw[t])
            write_flo(root / "bw" / "bw_flow" / clip / f"{t:05d}.flo", bw[t])
            occ = lai_occlusion_for_pair(fw[t].astype(np.float64), bw[t].astype(np.float64))
            p = root / "occ" / "fw_occlusion" / clip / f"{t:05d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), np.uint8(np.clip(occ, 0, 1) * 255.0), [cv2.IMWRITE_PNG_COMPRESSION, 0])
    return root


def lai_loop(pred: np.ndarray, root, clip: str, kind: str, dtype=np.float64) -> list[float]:
    """Per-frame warp error (Lai) and flicker of uint8 frames `pred` (N, H, W, 3) from Lai's folders.

    dtype=np.float32 reads frames as Lai's read_img does (float32 / 255); float64 is the exact value.
    """
    out = []
    h, w = pred.shape[1:3]
    for t in range(1, len(pred)):
        img1 = pred[t - 1].astype(dtype) / dtype(255.0)
        img2 = pred[t].astype(dtype) / dtype(255.0)
        flow = _read_flo_np(root / "fw_flow" / clip / f"{t - 1:05d}.flo")
        occ_png = root / "fw_occlusion" / clip / f"{t - 1:05d}.png"
        if occ_png.exists():
            occ = cv2.imread(str(occ_png)).astype(np.float32) / 255.0          # 3 channels, as Lai reads it
        else:
            bw = _read_flo_np(root / "bw_flow" / clip / f"{t - 1:05d}.flo")
            occ = np.repeat(lai_occlusion_for_pair(flow.astype(np.float64), bw.astype(np.float64))[..., None], 3, 2)
        noc = 1.0 - occ
        n = noc.sum()
        if n == 0:
            n = h * w * 3
        if kind == "warp_error":
            diff = (resample_np(img2, flow).astype(dtype) - img1) * noc
            out.append(float(np.sum(np.square(diff)) / n))
        else:
            diff = np.abs(resample_np(pred[t].astype(np.float64), flow) - pred[t - 1]) * noc
            out.append(float(diff.sum() / n))
    return out


def feed(metric, pred: np.ndarray, gt: np.ndarray, clip: str, sizes: list[int], pairs_from=None, use_ctx=True):
    """Feed a clip in batches of `sizes` the way the scorer does (ctx with prev frames and pairs)."""
    P, G = to_t(pred), to_t(gt)
    start = 0
    for k in sizes:
        p, g = P[start:start + k], G[start:start + k]
        if use_ctx:
            prev_p = P[start - 1:start] if start else None
            prev_g = G[start - 1:start] if start else None
            pairs = None
            if pairs_from is not None:
                seq = G[max(start - 1, 0):start + k]
                pairs = flow_pairs(seq, pairs_from, clip=clip, start=max(start - 1, 0))
            metric.update(p, g, FrameContext(clip=clip, start=start, prev_pred=prev_p, prev_gt=prev_g, pairs=pairs))
        else:
            metric.update(p, g)
        start += k
    assert start == len(gt)
    return metric.end_clip(clip)


# --------------------------------------------------------------------------- warp error / flicker
@pytest.mark.parametrize("layout", ["occ", "bw"])
@pytest.mark.parametrize("Metric", [WarpError, Flicker])
def test_matches_lai_loop_on_precomputed_flow(Metric, layout, lai_folders, sample_frames):
    root = lai_folders / layout
    pre = get_estimator(str(root))
    # every degradation with Lai's PNG masks; with bw_flow (mask computed here) one is enough
    preds = PREDICTIONS if layout == "occ" else {"hue": PREDICTIONS["hue"]}
    for clip, gt in sample_frames.items():
        for pname, make in preds.items():
            pred = make(gt)
            ref = lai_loop(pred, root, clip, Metric.name)
            # (a) the scorer's way: pairs shared through the context
            m = Metric()
            value = feed(m, pred, gt, clip, [len(gt)], pairs_from=pre)
            # (b) the metric reading the folder itself (ctx without pairs), in uneven batches
            m2 = Metric(flow=str(root))
            feed(m2, pred, gt, clip, [3, 1, 4, 2])
            for got in (m.per_frame[clip], m2.per_frame[clip]):
                assert len(got) == len(gt) - 1
                np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12, err_msg=f"{clip}/{pname}")
            assert value == pytest.approx(float(np.mean(ref)), rel=1e-9)
            if Metric is WarpError and pname == "shift_noise":  # Lai's float32 arithmetic: only rounding
                lai32 = lai_loop(pred, root, clip, Metric.name, dtype=np.float32)
                np.testing.assert_allclose(m.per_frame[clip], lai32, rtol=1e-5)
            assert all(v > 0 for v in ref)


@pytest.mark.parametrize("Metric", [WarpError, Flicker, CDC])
def test_batching_invariance(Metric, sample_frames):
    gt = sample_frames["bikes"]
    pred = degrade(gt, "hue", seed=1)
    dis = get_estimator("dis")
    runs = {}
    for label, sizes, use_ctx in [("whole", [10], True), ("ones", [1] * 10, True), ("mixed", [4, 1, 2, 3], True),
                                  ("standalone", [3, 3, 4], False)]:
        m = Metric()
        kw = {"pairs_from": dis} if (use_ctx and Metric is not CDC) else {}
        feed(m, pred, gt, "bikes", sizes, use_ctx=use_ctx, **kw)
        runs[label] = m.per_frame["bikes"], m.per_clip["bikes"]
    ref_frames, ref_clip = runs["whole"]
    assert len(ref_frames) == 9 and ref_clip is not None
    for label, (frames, clip_value) in runs.items():
        np.testing.assert_allclose(frames, ref_frames, rtol=1e-6, atol=1e-12, err_msg=label)
        assert clip_value == pytest.approx(ref_clip, rel=1e-6)


def test_standalone_training_loop_use(sample_frames):
    """update(pred, gt) with no context estimates GT flow (DIS) itself; values equal the scorer's way."""
    gt = sample_frames["bigbuckbunny"]
    pred = shift_and_noise(gt, seed=5)
    m = WarpError()
    for i in range(0, 10, 4):
        m.update(to_t(pred[i:i + 4]), to_t(gt[i:i + 4]))
    m.end_clip("a")
    ref = WarpError()
    pairs = flow_pairs(to_t(gt), get_estimator("dis"))
    ref.update(to_t(pred), to_t(gt), FrameContext(clip="a", pairs=pairs))
    ref.end_clip()
    assert m.per_frame["a"] == ref.per_frame["a"]
    assert m.weights_used() == {} and m.compute() == pytest.approx(ref.compute())


def test_static_clip_has_zero_flicker_and_warp_error(sample_frames):
    frame = sample_frames["bikes"][:1]
    static = np.repeat(frame, 5, axis=0)
    for Metric in (Flicker, WarpError):
        m = Metric()
        m.update(to_t(static), to_t(static))
        # DIS gives exactly zero flow; grid_sample's coordinate normalisation leaves float64 rounding
        assert abs(m.end_clip("s")) < 1e-10
        assert len(m.per_frame["s"]) == 4 and max(abs(v) for v in m.per_frame["s"]) < 1e-10


def feed_suite(suite: MetricSuite, pred: np.ndarray, gt: np.ndarray, clip: str, sizes: list[int]) -> None:
    """Feed a clip to a MetricSuite in batches of `sizes` (the suite keeps the previous frames and flow)."""
    P, G = to_t(pred), to_t(gt)
    start = 0
    for k in sizes:
        suite.update(P[start:start + k], G[start:start + k], clip=clip)
        start += k
    assert start == len(gt)
    suite.end_clip(clip)


def test_gt_flicker_is_a_property_of_the_gt(sample_frames):
    gt = sample_frames["bigbuckbunny"]
    pred = degrade(gt, "hue", seed=2)
    suite = MetricSuite(["flicker"], flow="dis")
    feed_suite(suite, pred, gt, "c", [6, 4])
    own = suite.gt_twins["flicker"]  # the suite's GT twin: the GT's own flicker
    twin = Flicker()
    feed(twin, gt, gt, "c", [10])
    assert own.per_frame["c"] == pytest.approx(twin.per_frame["c"], rel=1e-12)
    real = Flicker()
    feed(real, pred, gt, "c", [10])
    assert 0 < twin.per_clip["c"] < real.per_clip["c"]       # the hue jitter flickers more than the GT


@pytest.mark.parametrize("flownet2_ready", [False, True], ids=["offline", "flownet2-ready"])
def test_suite_resolves_auto_flow(monkeypatch, flownet2_ready):
    """MetricSuite(flow="auto") resolves `auto` itself (vcbench.flow.registry.resolve_flow): the protocol
    names the estimator it picks, never "auto", as a suite given that estimator by name does."""
    from vcbench.flow import registry as flow_registry

    monkeypatch.setattr(flow_registry, "ptlflow_installed", lambda: flownet2_ready)
    monkeypatch.setattr(flow_registry.weights, "status", lambda name: ("verified", None, None))
    picked = "flownet2" if flownet2_ready else "dis"
    auto = MetricSuite(["psnr"], flow="auto")  # psnr needs no flow: nothing builds an estimator
    assert auto.flow_name == picked and auto.protocol() == MetricSuite(["psnr"], flow=picked).protocol()
    assert auto.protocol()["name"] == f"vcbench-v1/{picked}"


def test_empty_mask_divides_by_all_pixels():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (3, 3, 6, 7), generator=g, dtype=torch.uint8)
    fw = torch.zeros(2, 2, 6, 7)
    noc = torch.zeros(2, 1, 6, 7)
    noc[1, 0, :3] = 1.0                               # pair 1: half the rows valid
    m = WarpError()
    m.update(a, a, FrameContext(clip="z", pairs=FlowPairs(fw=fw, noc=noc)))
    vals = m.per_frame.get("z") or m._current
    assert vals[0] == 0.0                             # nothing valid: 0 / (H*W*3), not NaN
    d = (a[2].double() - a[1].double()) / 255.0
    assert vals[1] == pytest.approx(float(d[:, :3].square().sum() / (3 * 3 * 7)), rel=1e-6)


def test_single_frame_clip_is_undefined_and_skipped():
    m = WarpError()
    m.update(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    assert m.end_clip("one") is None and m.compute() is None


def test_flow_weights_missing_is_a_weights_error(torch_home):
    with pytest.raises(WeightsError, match="vcbench weights download"):
        WarpError(flow="raft")
    with pytest.raises(WeightsError):
        Flicker(flow="flownet2")


def test_metric_class_attributes():
    for cls, name in ((WarpError, "warp_error"), (Flicker, "flicker"), (CDC, "cdc")):
        assert cls.name == name and cls.higher_is_better is False
    assert WarpError.needs == Flicker.needs == frozenset({"flow"}) and CDC.needs == frozenset()
    assert CDC.min_frames == 5


# ------------------------------------------------------------------------------------------ CDC
def tcvc_cdc(frames_rgb: np.ndarray) -> float:
    """TCVC's calculate_folders_multiple for one clip: cv2.imread-style BGR, cv2.calcHist / (H*W)."""
    hists = {c: [] for c in range(3)}
    for f in frames_rgb:
        bgr = np.ascontiguousarray(f[..., ::-1])
        h, w = bgr.shape[:2]
        for c in range(3):
            hists[c].append(cv2.calcHist([bgr], [c], None, [256], [0, 256]) / (h * w))

    def js(p, q):
        m = (p + q) / 2
        return 0.5 * scipy.stats.entropy(p, m) + 0.5 * scipy.stats.entropy(q, m)

    means = []
    for c in range(3):
        total = 0.0
        for d, wt in zip((1, 2, 4), (1 / 3, 1 / 3, 1 / 3)):
            total += wt * np.mean([js(hists[c][i], hists[c][i + d]) for i in range(len(frames_rgb) - d)])
        means.append(float(total))
    return float(np.mean(means))


def exact_cdc(frames_rgb: np.ndarray) -> float:
    """The same formula in float64 with np.bincount and explicit sums."""
    n, h, w, _ = frames_rgb.shape
    hist = np.stack([[np.bincount(f[..., c].ravel(), minlength=256) / (h * w) for c in range(3)] for f in frames_rgb])

    def kl(p, q):
        nz = p > 0
        return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))

    out = 0.0
    for c in range(3):
        for d in (1, 2, 4):
            vals = [0.5 * kl(hist[i, c], (hist[i, c] + hist[i + d, c]) / 2)
                    + 0.5 * kl(hist[i + d, c], (hist[i, c] + hist[i + d, c]) / 2) for i in range(n - d)]
            out += np.mean(vals) / 3
    return out / 3


def test_cdc_matches_tcvc(sample_frames):
    m = CDC()
    expected = []
    for clip, gt in sample_frames.items():
        for pname, make in PREDICTIONS.items():
            pred = make(gt)
            name = f"{clip}/{pname}"
            value = feed(m, pred, gt, name, [3, 5, 2])
            assert value == pytest.approx(exact_cdc(pred), rel=1e-10)
            assert value == pytest.approx(tcvc_cdc(pred), rel=2e-5)
            expected.append(value)
    assert m.compute() == pytest.approx(float(np.mean(expected)), rel=1e-12)
    # hue jitter changes colour distributions between frames more than a fixed shift does
    assert m.per_clip["bikes/hue"] > m.per_clip["bikes/shift_noise"] * 0.5


def test_cdc_undefined_under_five_frames(sample_frames):
    m = CDC()
    short = sample_frames["bikes"][:4]
    assert feed(m, short, short, "short", [4]) is None
    five = sample_frames["bikes"][:5]
    v = feed(m, five, five, "five", [2, 3])
    assert v is not None and math.isfinite(v)
    assert m.compute() == pytest.approx(v)                    # the undefined clip is left out
    assert m.per_clip["short"] is None


@requires_gpu
@pytest.mark.gpu
def test_metrics_on_gpu_equal_cpu(sample_frames):
    gt = sample_frames["bikes"]
    pred = degrade(gt, "hue", seed=1)
    pairs = flow_pairs(to_t(gt), get_estimator("dis"))
    for Metric in (WarpError, Flicker, CDC):
        vals = []
        for dev in ("cpu", "cuda"):
            m = Metric(device=dev)
            p = FlowPairs(fw=pairs.fw.to(dev), noc=pairs.noc.to(dev))
            m.update(to_t(pred).to(dev), to_t(gt).to(dev), FrameContext(clip="g", pairs=p))
            vals.append(m.end_clip())
        assert vals[1] == pytest.approx(vals[0], rel=1e-5)


def test_cdc_histograms_opencv_path_equals_bincount(sample_frames, monkeypatch):
    """The CPU's calcHist counts equal the bincount path (used on other devices and for huge frames)."""
    import vcbench.metrics.cdc as cdc

    frames = torch.from_numpy(np.ascontiguousarray(sample_frames["bikes"][:4])).permute(0, 3, 1, 2).contiguous()
    fast = cdc.channel_histograms(frames)
    n, c, h, w = frames.shape
    idx = frames.reshape(n, c, h * w).to(torch.int64) + (torch.arange(n * c) * 256).view(n, c, 1)
    slow = torch.bincount(idx.reshape(-1), minlength=n * c * 256).view(n, c, 256).double() / (h * w)
    assert torch.equal(fast, slow) and fast.dtype == torch.float64


def test_flicker_tracks_the_gts_own_value_in_any_batching(sample_frames):
    """The suite's GT flicker (reported beside it; its rows are Flicker's GT side, which the scorer
    caches) equals a Flicker fed the GT as output, whatever the batch split."""
    gt = sample_frames["bikes"]
    pred = degrade(gt, "hue", seed=4)
    a, b, twin = MetricSuite(["flicker"], flow="dis"), MetricSuite(["flicker"], flow="dis"), Flicker()
    feed_suite(a, pred, gt, "c", [10])
    feed_suite(b, pred, gt, "c", [3, 4, 3])
    feed(twin, gt, gt, "c", [10])
    a_gt, b_gt = a.gt_twins["flicker"], b.gt_twins["flicker"]
    assert a_gt.per_frame["c"] == pytest.approx(twin.per_frame["c"], rel=1e-12)
    assert b_gt.per_frame["c"] == pytest.approx(twin.per_frame["c"], rel=1e-12)
    assert a.gt_values()["flicker"] == pytest.approx(twin.compute(), rel=1e-12) and len(a_gt.per_frame["c"]) == 9
