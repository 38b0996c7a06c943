"""Seconds per frame of dvp's training step, lai18 and instcolor (random weights with the official
shapes: speed does not depend on the values) at a given frame size, on the CPU or a GPU.

    python benchmarks/postprocess_speed.py --size 480x854 [--device cuda] [--threads 2]

dvp's cost per frame is epochs x (one Adam step at the frame size) + one forward; the script times
steps and reports the 50-epoch (official) figure and the figure with --model-option max_side=N.
"""

from __future__ import annotations

import argparse
import time

import torch


def _time(fn, device, n=3) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / n


def dvp_step(h: int, w: int, device: torch.device) -> float:
    from vcbench.baselines.dvp import MULTIPLE, VCN, irt_losses

    hp, wp = -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE
    net = VCN(6).to(device)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    x, p = torch.rand(1, 3, hp, wp, device=device), torch.rand(1, 3, hp, wp, device=device)

    def step():
        _, loss = irt_losses(net(x), p, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return _time(step, device)


def lai18_frame(h: int, w: int, device: torch.device) -> float:
    from vcbench.baselines.lai18 import TransformNet

    net = TransformNet().eval().to(device)
    x = torch.rand(1, 12, -(-h // 4) * 4, -(-w // 4) * 4, device=device)
    with torch.no_grad():
        return _time(lambda: net(x, None), device)


def instcolor_frame(h: int, w: int, device: torch.device, boxes: int) -> float:
    import numpy as np

    from vcbench.baselines.instcolor.networks import ColorGenerator, FusionGenerator, box_info

    g, gf = ColorGenerator().eval().to(device), FusionGenerator().eval().to(device)
    A = torch.rand(1, 1, 256, 256, device=device)
    crops = torch.rand(boxes, 1, 256, 256, device=device)
    bx = [(int(w * i / (boxes + 1)), int(h * i / (boxes + 1)), int(w * (i + 1) / (boxes + 1)), h) for i in range(boxes)]
    infos = [[box_info(b, (w, h), 256 // k) for b in bx] for k in (1, 2, 4, 8)]

    def run():
        _, f = g.features(crops, torch.zeros(boxes, 2, 256, 256, device=device), torch.full_like(crops, -0.5))
        gf.fused(A, torch.zeros(1, 2, 256, 256, device=device), torch.full_like(A, -0.5), f, infos)
    with torch.no_grad():
        return _time(run, device, n=2) if boxes else float(np.nan)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="480x854")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-side", type=int, default=256)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    dev = torch.device(args.device)
    s = dvp_step(h, w, dev)
    sc = args.max_side / max(h, w)
    s_cap = dvp_step(max(1, round(h * sc)), max(1, round(w * sc)), dev)
    print(f"{args.size} on {dev} ({torch.get_num_threads()} threads)")
    print(f"dvp: {s:.3f} s per Adam step -> {50 * s:.1f} s/frame at 50 epochs; max_side={args.max_side}: "
          f"{s_cap:.3f} s/step -> {50 * s_cap:.1f} s/frame")
    print(f"lai18: {lai18_frame(h, w, dev):.3f} s/frame (network only)")
    print(f"instcolor: {instcolor_frame(h, w, dev, 8):.3f} s/frame with 8 boxes (generators only; Mask R-CNN aside)")


if __name__ == "__main__":
    main()
