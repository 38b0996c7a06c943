"""Top-k retrieval throughput: vcbench's gallery index (faiss flat / IVF, GPU paths) vs numpy.

    python benchmarks/retrieval_throughput.py                       # 100k x 512 on the CPU
    python benchmarks/retrieval_throughput.py --n 1280000 --queries 20000 --device cuda   # ImageNet scale

Synthetic clustered, L2-normalised vectors stand in for descriptors (no ImageNet here). Prints
queries/s per method, its ratio to the numpy brute force (matmul + argpartition, the obvious exact
baseline) and, for IVF, recall@k against the exact result. Every exact method is checked to return
the numpy ids.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np


def synthetic(n: int, d: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def numpy_topk(g: np.ndarray, q: np.ndarray, k: int, chunk: int = 256) -> np.ndarray:
    out = []
    for s in range(0, len(q), chunk):
        scores = q[s:s + chunk] @ g.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
        out.append(np.take_along_axis(part, order, 1))
    return np.concatenate(out)


def timed(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up (GPU transfers, thread pools)
    best, res = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t)
    return best, res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="gallery size")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--nlist", type=int, default=None, help="IVF lists (default ~4 sqrt(n))")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-numpy", action="store_true", help="skip the numpy baseline (slow at ImageNet scale)")
    ap.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = ap.parse_args(argv)

    import faiss
    import torch

    from vcbench.retrieval.index import GalleryIndex, default_nlist, faiss_gpu_available, recall_at_k

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    g = synthetic(args.n, args.dim, args.clusters, 0)
    q = synthetic(args.queries, args.dim, args.clusters, 1)
    ids = [str(i) for i in range(args.n)]
    k = args.k
    print(f"gallery {args.n} x {args.dim}, {args.queries} queries, top-{k}; faiss {faiss.__version__} "
          f"(GPU support: {faiss_gpu_available()}), torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}"
          + (f", {torch.cuda.get_device_name()}" if device.startswith("cuda") else ""))

    rows: list[dict] = []

    def record(method: str, secs: float, got_ids: np.ndarray | None, exact_ids: np.ndarray | None, note: str = ""):
        qps = args.queries / secs
        rec = recall_at_k(exact_ids, got_ids, k) if exact_ids is not None and got_ids is not None else None
        rows.append({"method": method, "qps": qps, "recall": rec, "note": note})

    exact_ids = None
    if not args.skip_numpy:
        secs, exact_ids = timed(lambda: numpy_topk(g, q, k), args.repeat)
        record("numpy brute force (cpu)", secs, exact_ids, exact_ids)

    t = time.perf_counter()
    flat = GalleryIndex.build(g, ids, descriptor="synthetic")
    build_flat = time.perf_counter() - t
    secs, res = timed(lambda: flat.search(q, k), args.repeat)
    if exact_ids is None:
        exact_ids = res.ids
    record("faiss IndexFlatIP (cpu)", secs, res.ids, exact_ids, f"build {build_flat:.1f}s")

    nlist = args.nlist or default_nlist(args.n)
    t = time.perf_counter()
    ivf = GalleryIndex.build(g, ids, descriptor="synthetic", kind="ivf", nlist=nlist, nprobe=args.nprobe[0])
    build_ivf = time.perf_counter() - t
    for nprobe in args.nprobe:
        ivf.set_nprobe(nprobe)
        secs, res = timed(lambda: ivf.search(q, k), args.repeat)
        record(f"faiss IVFFlat nlist={nlist} nprobe={nprobe} (cpu)", secs, res.ids, exact_ids,
               f"train+add {build_ivf:.1f}s")

    if device.startswith("cuda"):
        flat.to_device(device)
        engine = "faiss GpuIndexFlatIP" if faiss_gpu_available() else "torch fp32 matmul+topk"
        secs, res = timed(lambda: flat.search(q, k), args.repeat)
        record(f"exact, {engine} (gpu)", secs, res.ids, exact_ids)
        if faiss_gpu_available():
            ivf.to_device(device)
            for nprobe in args.nprobe:
                ivf.set_nprobe(nprobe)
                secs, res = timed(lambda: ivf.search(q, k), args.repeat)
                record(f"faiss GpuIndexIVFFlat nprobe={nprobe} (gpu)", secs, res.ids, exact_ids)

    base = rows[0]["qps"]
    base_name = rows[0]["method"]
    w = max(len(r["method"]) for r in rows)
    print(f"{'method'.ljust(w)}  {'queries/s':>11}  {'x ' + base_name.split(' (')[0]:>22}  {'recall@' + str(k):>9}  note")
    for r in rows:
        rec = "" if r["recall"] is None else f"{r['recall']:.4f}"
        print(f"{r['method'].ljust(w)}  {r['qps']:11.1f}  {r['qps'] / base:22.2f}  {rec:>9}  {r['note']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
