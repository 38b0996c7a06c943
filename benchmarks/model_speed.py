"""Seconds per frame of each built-in model's `colorize` at a frame size (DAVIS 480x854 by default) on
this machine, with random weights of the official shapes where a model loads weights (speed does
not depend on the values); the figures `vcbench evaluate` prints before a run (baselines/needs.py)
come from this script.

    python benchmarks/model_speed.py [--size 480x854] [--frames 4] [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _weights(ck: Path) -> None:
    """Random official-shape files for the models that load weights, in a private torch-hub cache."""
    from vcbench.baselines.lai18 import TransformNet
    from vcbench.baselines.zhang import ECCV16Net, SIGGRAPH17Net
    from vcbench.random_weights import write_random_weights

    torch.save(ECCV16Net().state_dict(), ck / "colorization_release_v2-9b330a0b.pth")
    torch.save(SIGGRAPH17Net().state_dict(), ck / "siggraph17-df00044c.pth")
    torch.save({"model": TransformNet().state_dict()}, ck / "ECCV18_blind_consistency.pth")
    write_random_weights(ck, ["tcvc"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="480x854")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="gray,reinhard,welsh,propagate,zhang16,zhang17,zhang16+lai18,tcvc")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import os

    home = Path(tempfile.mkdtemp())
    (home / "hub" / "checkpoints").mkdir(parents=True)
    os.environ["TORCH_HOME"] = str(home)
    _weights(home / "hub" / "checkpoints")
    from vcbench.baselines.registry import get_model
    from vcbench.frames import Clip, sample_videos
    from vcbench.lab import rgb_uint8_to_lab

    import cv2

    h, w = (int(v) for v in args.size.split("x"))
    clip = Clip("bikes", sample_videos()["bikes"], "video")
    frames = []
    for f in clip.iter_frames():
        frames.append(cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR))
        if len(frames) == args.frames + 1:
            break
    rgb = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
    L = rgb_uint8_to_lab(rgb)[:, :1].contiguous().to(args.device)
    for name in args.models.split(","):
        model = get_model(name, args.device, **({"allow_unverified_weights": True} if "zhang" in name or name == "tcvc" else {}))
        model.start_clip([frames[0]])
        model.colorize(L[:1])  # warm-up
        model.start_clip([frames[0]])  # a fresh clip: whole-clip models (tcvc, dvp) take one call per clip
        t = time.perf_counter()
        with torch.inference_mode():
            model.colorize(L[1:])
        print(f"{name}: {(time.perf_counter() - t) / args.frames:.3f} s/frame at {args.size} on {args.device} "
              f"({torch.get_num_threads()} threads)", flush=True)


if __name__ == "__main__":
    main()
