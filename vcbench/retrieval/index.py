"""A gallery index over L2-normalised descriptors: exact inner product (cosine) or IVF, with faiss.

Exact search is `IndexFlatIP` on the CPU and `GpuIndexFlatIP` when faiss is built with GPU support
and a GPU is present. The faiss-cpu wheel (what PyPI ships) has no GPU code, so on a CUDA device
without faiss-gpu the exact search runs as a chunked fp32 matmul + top-k in torch: the same exact
result, and the fastest exact search available in that setup. IVF (`IndexIVFFlat`, `nlist`
centroids, `nprobe` probed) is for galleries too large for exhaustive search; `recall_at_k` measures
what it loses. Saved atomically as `index.faiss` + `gallery.tsv` (id, path) + `index.json`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from vcbench.atomic import atomic_path, atomic_write_text
from vcbench.errors import InputError

if TYPE_CHECKING:
    import torch

INDEX_FILE, LIST_FILE, META_FILE = "index.faiss", "gallery.tsv", "index.json"
FORMAT_VERSION = 1


def faiss_gpu_available() -> bool:
    """True when the installed faiss has GPU support and sees a GPU."""
    import faiss

    return hasattr(faiss, "StandardGpuResources") and getattr(faiss, "get_num_gpus", lambda: 0)() > 0


def normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation into a new C-contiguous float32 array (zero rows stay zero)."""
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    if x.ndim != 2:
        raise ValueError(f"expected (N, d) features, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def recall_at_k(exact: np.ndarray, approx: np.ndarray, k: int | None = None) -> float:
    """Mean over queries of |top-k(exact) ∩ top-k(approx)| / k (ids; -1 padding never matches)."""
    exact, approx = np.asarray(exact), np.asarray(approx)
    k = k or exact.shape[1]
    hits = 0
    for e, a in zip(exact[:, :k], approx[:, :k]):
        hits += len(set(e[e >= 0].tolist()) & set(a[a >= 0].tolist()))
    return hits / (k * len(exact)) if len(exact) else float("nan")


def default_nlist(n: int) -> int:
    """About 4 sqrt(N) lists, and at least 39 training points per list (faiss's own minimum)."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def list_checksum(ids: Sequence[str], paths: Sequence[str]) -> str:
    h = hashlib.sha256()
    for i, p in zip(ids, paths):
        h.update(f"{i}\t{p}\n".encode("utf-8"))
    return h.hexdigest()


class _TorchFlatIP:
    """Exact inner-product search on a CUDA device in torch (used when faiss has no GPU support)."""

    def __init__(self, feats: np.ndarray, device: str, chunk: int = 1 << 18):
        import torch

        self.torch = torch
        self.x = torch.from_numpy(feats).to(device)
        self.chunk = chunk
        self.ntotal = feats.shape[0]

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        qt = torch.from_numpy(q).to(self.x.device)
        best_s = best_i = None
        for start in range(0, self.ntotal, self.chunk):
            s = qt @ self.x[start:start + self.chunk].T
            kk = min(k, s.shape[1])
            sc, ix = s.topk(kk, dim=1)
            ix = ix + start
            if best_s is not None:
                sc, sel = torch.cat([best_s, sc], 1).topk(min(k, best_s.shape[1] + kk), dim=1)
                ix = torch.cat([best_i, ix], 1).gather(1, sel)
            best_s, best_i = sc, ix
        return best_s.cpu().numpy(), best_i.cpu().numpy().astype(np.int64)


@dataclass
class SearchResult:
    scores: np.ndarray  # (Q, k) float32 inner products, best first
    ids: np.ndarray  # (Q, k) int64 gallery positions (-1 where the gallery has fewer than k)


class GalleryIndex:
    """Descriptors of a gallery with their ids and file paths, searchable by inner product."""

    def __init__(self, index, ids: list[str], paths: list[str], descriptor: str, dim: int, kind: str,
                 nlist: int | None = None, nprobe: int | None = None):
        self.index = index
        self.ids = ids
        self.paths = paths
        self.descriptor = descriptor
        self.dim = dim
        self.kind = kind
        self.nlist = nlist
        self.nprobe = nprobe
        self.device = "cpu"
        self._gpu = None  # the search engine on a GPU, when moved there

    # ------------------------------------------------------------------------------- building
    @classmethod
    def build(cls, features: np.ndarray, ids: Sequence[str], paths: Sequence[str] | None = None, *,
              descriptor: str = "", kind: str = "flat", nlist: int | None = None, nprobe: int | None = None,
              seed: int = 1234) -> "GalleryIndex":
        """Index `features` (N, d) (normalised here) under `ids`. kind: "flat" (exact) or "ivf"."""
        import faiss

        feats = normalize(features)
        n, d = feats.shape
        ids = [str(i) for i in ids]
        paths = [str(p) for p in (paths if paths is not None else ids)]
        if len(ids) != n or len(paths) != n:
            raise ValueError(f"{n} feature rows but {len(ids)} ids and {len(paths)} paths")
        if len(set(ids)) != n:
            raise InputError("gallery ids are not unique", hint="give every gallery image its own id")
        if n == 0:
            raise InputError("the gallery is empty", hint="point the gallery at a folder with images")
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
            index.add(feats)
            return cls(index, ids, paths, descriptor, d, "flat")
        if kind == "ivf":
            nlist = nlist or default_nlist(n)
            nprobe = nprobe or max(1, nlist // 8)
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed  # k-means initialisation: fixed, so rebuilds give the same index
            index.cp.verbose = False
            index.train(feats)
            index.add(feats)
            index.nprobe = nprobe
            return cls(index, ids, paths, descriptor, d, "ivf", nlist, nprobe)
        raise ValueError(f"unknown index kind {kind!r} (flat or ivf)")

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def set_nprobe(self, nprobe: int) -> None:
        if self.kind != "ivf":
            raise ValueError("nprobe applies to IVF indexes only")
        self.nprobe = nprobe
        import faiss

        faiss.extract_index_ivf(self.index).nprobe = nprobe
        if self._gpu is not None and hasattr(self._gpu, "nprobe"):
            self._gpu.nprobe = nprobe

    def to_device(self, device: "str | torch.device") -> "GalleryIndex":
        """Move search to `device` ("cpu", "cuda[:i]" or "auto", as vcbench.devices resolves it); see
        the module note for the GPU paths."""
        import faiss

        # lazy: vcbench.devices imports torch, and this module stays torch-free until a GPU is asked for
        from vcbench.devices import resolve_device

        dev = resolve_device(device)
        if dev.type != "cuda":
            self._gpu, self.device = None, "cpu"
            return self
        gpu_id = dev.index if dev.index is not None else 0
        if faiss_gpu_available():
            self._res = faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._res, gpu_id, self.index)
        elif self.kind == "flat":
            feats = np.ascontiguousarray(self.index.reconstruct_n(0, self.ntotal), dtype=np.float32)
            self._gpu = _TorchFlatIP(feats, f"cuda:{gpu_id}")
        else:
            self._gpu = None  # IVF without faiss-gpu stays on the CPU
            return self
        self.device = f"cuda:{gpu_id}"
        return self

    # -------------------------------------------------------------------------------- search
    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        """Top-k gallery positions by inner product for (Q, d) queries (normalised here)."""
        q = normalize(queries)
        if q.shape[1] != self.dim:
            raise InputError(f"query descriptors have {q.shape[1]} dimensions, the index {self.dim}",
                             hint=f"use the descriptor the index was built with ({self.descriptor})")
        kk = min(k, self.ntotal)
        engine = self._gpu if self._gpu is not None else self.index
        scores, ids = engine.search(q, kk)
        scores, ids = np.asarray(scores, np.float32), np.asarray(ids, np.int64)
        if kk < k:
            scores = np.pad(scores, ((0, 0), (0, k - kk)), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
        return SearchResult(scores, ids)

    # ------------------------------------------------------------------------------- storage
    def save(self, folder: str | Path) -> Path:
        """Write index, id/path list and JSON sidecar, each atomically; the sidecar last, so a
        folder with a sidecar always holds a complete index."""
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / INDEX_FILE) as tmp:
            try:
                faiss.write_index(self.index, str(tmp))
            except RuntimeError as exc:  # faiss's write errors (a full disk...) carry the OS reason as text
                raise OSError(str(exc).rpartition(": ")[2] or str(exc)) from exc
        for bad in (i for i in self.ids + self.paths if "\t" in i or "\n" in i):
            raise InputError(f"gallery id or path contains a tab or newline: {bad!r}")
        atomic_write_text(folder / LIST_FILE, "".join(f"{i}\t{p}\n" for i, p in zip(self.ids, self.paths)))
        meta = {"format": FORMAT_VERSION, "descriptor": self.descriptor, "dim": self.dim, "count": self.ntotal,
                "kind": self.kind, "nlist": self.nlist, "nprobe": self.nprobe,
                "list_sha256": list_checksum(self.ids, self.paths)}
        atomic_write_text(folder / META_FILE, json.dumps(meta, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, descriptor: str | None = None,
             device: "str | torch.device" = "cpu") -> "GalleryIndex":
        """Read a saved index, checking it is complete and (if given) built with `descriptor`."""
        import faiss

        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise InputError("no gallery index here (index.json missing)", path=folder,
                             hint="build it first (vcbench build-dataset builds it once per output folder)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"unreadable index sidecar ({exc})", path=meta_path, hint="delete the folder and rebuild") from exc
        if descriptor is not None and meta.get("descriptor") != descriptor:
            raise InputError(f"index was built with descriptor {meta.get('descriptor')!r}, not {descriptor!r}",
                             path=folder, hint="rebuild the gallery index with the descriptor you want")
        try:
            lines = (folder / LIST_FILE).read_text(encoding="utf-8").splitlines()
            index = faiss.read_index(str(folder / INDEX_FILE))
        except (OSError, RuntimeError, UnicodeDecodeError) as exc:
            raise InputError(f"gallery index is incomplete or corrupt ({str(exc).splitlines()[0] if str(exc) else exc})",
                             path=folder, hint="delete the folder and rebuild") from exc
        ids, paths = zip(*(ln.split("\t", 1) for ln in lines)) if lines else ((), ())
        ids, paths = list(ids), list(paths)
        if (len(ids) != meta["count"] or index.ntotal != meta["count"] or index.d != meta["dim"]
                or list_checksum(ids, paths) != meta["list_sha256"]):
            raise InputError("gallery index files disagree with their sidecar (count, dimension or list checksum)",
                             path=folder, hint="delete the folder and rebuild")
        out = cls(index, ids, paths, meta["descriptor"], meta["dim"], meta["kind"], meta.get("nlist"), meta.get("nprobe"))
        if out.kind == "ivf" and out.nprobe:
            faiss.extract_index_ivf(index).nprobe = out.nprobe
        return out.to_device(device)


def brute_force(gallery: np.ndarray, queries: np.ndarray, k: int) -> SearchResult:
    """Reference exact search in numpy (normalised inner product, ties by lower id)."""
    g, q = normalize(gallery), normalize(queries)
    s = q @ g.T
    k = min(k, g.shape[0])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    ps = np.take_along_axis(s, part, 1)
    order = np.lexsort((part, -ps), axis=1)
    ids = np.take_along_axis(part, order, 1)
    return SearchResult(np.take_along_axis(s, ids, 1).astype(np.float32), ids.astype(np.int64))
