"""Plain-data results databases for the report tests (RunRecords built here, no model is run)."""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from vcbench.errors import VcbenchError
from vcbench.reports.db import ResultsDB, RunRecord

CLIPS = ("bear", "blackswan", "bmx-trees", "boat", "breakdance", "camel")
FRAMES = 12


def synthetic_run(model: str, *, psnr_shift: float = 0.0, lpips_shift: float = 0.0, colour_scale: float = 1.0,
                  protocol: str = "vcbench-v1/dis", estimator: str = "dis", dataset: str = "sample",
                  fps: float = 10.0, unverified: bool = False, seed: int = 0, created: str | None = None,
                  config: dict | None = None, clips: Sequence[str] = CLIPS) -> RunRecord:
    """A run whose per-frame values are smooth random curves; per-clip = mean of frames, dataset = mean
    of clips (as the scorer defines them), FID pooled (no per-clip value)."""
    rng = np.random.default_rng(seed)
    per_frame, per_clip, gt_clip = {}, {}, {}
    for k, clip in enumerate(clips):
        base = 22.0 + 2.0 * k  # clips differ in difficulty
        psnr = base + psnr_shift + 0.3 * np.sin(np.arange(FRAMES) / 2.0 + k) + rng.normal(0, 0.05, FRAMES)
        lpips = 0.25 - 0.01 * k + lpips_shift + rng.normal(0, 0.005, FRAMES)
        flicker = np.abs(3.0 + np.cos(np.arange(FRAMES - 1) / 3.0 + k) + rng.normal(0, 0.1, FRAMES - 1))
        gt_col = 30.0 + 3.0 * k
        colour = gt_col * colour_scale + rng.normal(0, 0.5, FRAMES)
        per_frame[clip] = {"psnr": psnr.tolist(), "lpips": lpips.tolist(), "flicker": flicker.tolist(),
                           "colorfulness": colour.tolist()}
        per_clip[clip] = {m: float(np.mean(v)) for m, v in per_frame[clip].items()}
        gt_clip[clip] = {"colorfulness": gt_col, "flicker": 2.5}
    metrics = {m: float(np.mean([per_clip[c][m] for c in clips])) for m in ("psnr", "lpips", "colorfulness", "flicker")}
    metrics["fid"] = 80.0 - 5.0 * psnr_shift
    run = RunRecord(
        model=model, dataset=dataset, protocol=protocol, model_config=config or {},
        weights={} if model in ("gray", "reinhard") else {f"{model}.pth": f"{seed:064x}"},
        unverified_weights=unverified, dataset_checksum="5a3c" * 16,
        flow={"estimator": estimator, "params": {"preset": "medium"} if estimator == "dis" else {"iters": 12}},
        reference_mode="first-frame", versions={"vcbench": "0.1.0"}, device="cpu", fps=fps,
        metrics=metrics, per_clip=per_clip, per_frame=per_frame,
        gt_metrics={"colorfulness": float(np.mean([gt_clip[c]["colorfulness"] for c in clips])), "flicker": 2.5},
        gt_per_clip=gt_clip, n_clips=len(clips), n_frames=len(clips) * FRAMES,
    )
    if created:
        run.created = created
    return run


def build_db(path: Path, clips: Sequence[str] = CLIPS) -> ResultsDB:
    """Three models on `sample` under DIS, one also under RAFT, one unverified, one superseded run."""
    db = ResultsDB(path)
    db.record(synthetic_run("gray", psnr_shift=-3.0, lpips_shift=0.1, colour_scale=0.05, fps=500.0, seed=1, clips=clips,
                            created="2026-01-01T00:00:00+00:00"))
    older = synthetic_run("reinhard", psnr_shift=-9.0, seed=2, clips=clips, created="2026-01-01T00:00:00+00:00")
    older.identity_extra = {"max_frames": 12}  # another run of the same model identity: superseded below
    older.run_key = older.identity_key()
    db.record(older)
    db.record(synthetic_run("reinhard", psnr_shift=0.0, lpips_shift=0.0, colour_scale=0.8, fps=80.0, seed=3, clips=clips,
                            created="2026-01-02T00:00:00+00:00"))
    db.record(synthetic_run("devc", psnr_shift=1.5, lpips_shift=-0.05, colour_scale=1.1, fps=3.2, seed=4, clips=clips,
                            unverified=True, created="2026-01-03T00:00:00+00:00"))
    db.record(synthetic_run("devc", psnr_shift=1.0, protocol="vcbench-v1/raft", estimator="raft", seed=5, clips=clips,
                            created="2026-01-03T00:00:00+00:00"))
    return db


def run_cli(argv: Sequence[str], modules: Sequence[str]) -> tuple[int, str, str]:
    """Run our command modules as `vcbench.cli.main` does (one-line error, exit 2), capturing output.

    Only the named modules are registered, so these tests do not depend on other commands' modules.
    """
    import importlib

    parser = argparse.ArgumentParser(prog="vcbench")
    sub = parser.add_subparsers(dest="command")
    for name in modules:
        importlib.import_module(f"vcbench.cli.{name}").register(sub)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        args = parser.parse_args(list(argv))
        try:
            rc = int(args.func(args) or 0)
        except VcbenchError as exc:
            print(f"vcbench: error: {exc}", file=err)
            rc = exc.exit_code
    return rc, out.getvalue(), err.getvalue()
