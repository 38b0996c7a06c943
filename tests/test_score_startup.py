"""A `vcbench score` process imports only what its metrics use: start-up is paid on every run.

torchvision (1-3 s: it imports every model family and torch._dynamo) is needed by no metric: vcbench
builds LPIPS's AlexNet trunk, FID/KID's Inception (`metrics.inception_net`) and top1/top5's VGG19
with its input transforms itself; PyAV (0.2-0.5 s) is not needed to score frame folders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_PROBE = ("import json, sys\n"
          "from vcbench.cli import main\n"
          "rc = main(sys.argv[2:])\n"
          "open(sys.argv[1], 'w').write(json.dumps({'rc': rc, 'modules': sorted(m for m in ('torchvision', 'av') "
          "if m in sys.modules)}))\n")


def _score_modules(tmp_path: Path, pred: Path, gt: Path, metrics: str) -> dict:
    out = tmp_path / f"probe-{metrics}.json"
    cmd = [sys.executable, "-c", _PROBE, str(out), "score", "--pred", str(pred), "--gt", str(gt), "--metrics", metrics,
           "--quiet", "--no-cache", "--allow-unverified-weights", "--json", str(tmp_path / "res.json")]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.fixture
def short_clips(tmp_path, sample_frames) -> tuple[Path, Path]:
    """(pred_dir, gt_dir): one real clip of 5 frames (CDC's least), its prediction a degraded copy: what
    a process imports does not depend on how many frames it scores, the run time does (VGG19)."""
    from conftest import PRED_DEGRADATIONS, degrade
    from vcbench.frames import write_frames

    name, frames = next(iter(sample_frames.items()))
    write_frames(tmp_path / "gt" / name, frames[:5])
    write_frames(tmp_path / "pred" / name, degrade(frames[:5], PRED_DEGRADATIONS[name], seed=0))
    return tmp_path / "pred", tmp_path / "gt"


@pytest.mark.parametrize("metrics", ["lpips", "fid", "top1,top5", "psnr,ssim,lpips,fid,warp_error,cdc,colorfulness",
                                     "cdc,colorfulness"])
def test_scoring_frame_folders_imports_neither_torchvision_nor_pyav(tmp_path, short_clips, weights_home, metrics):
    pred, gt = short_clips
    got = _score_modules(tmp_path, pred, gt, metrics)
    assert got == {"rc": 0, "modules": []}
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["protocol"]["decoder"].startswith("PyAV ")  # the version is still recorded, from metadata
    for m in metrics.split(","):
        assert res["metrics"][m] is not None
