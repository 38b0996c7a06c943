"""Build a gallery index once per output folder, resumably, and load it for the reference stage.

Descriptors are computed in chunks saved atomically (`features/<descriptor>-<list hash>/NNNNNN.npy`),
so an interrupted build over a large gallery (ImageNet train: 1.28M images) resumes at the next
chunk; each gallery image is decoded once. The index is then built from the chunks and saved with
its sidecar (`GalleryIndex.save`). `ensure_gallery` / `load_gallery` are what build-dataset calls.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from vcbench.atomic import atomic_path
from vcbench.devices import resolve_device
from vcbench.errors import InputError
from vcbench.retrieval.descriptors import Descriptor, get_descriptor
from vcbench.retrieval.index import META_FILE, GalleryIndex, default_nlist, list_checksum
from vcbench.retrieval.topk import Reference, top_k_for_clip
from vcbench.stills import list_stills
from vcbench.weights import WeightFile

CHUNK = 1024
#: Above this many images an IVF index replaces exhaustive search (on a CPU a flat search over
#: ImageNet takes ~1.3 GFLOP per query).
IVF_ABOVE = 200_000


def index_is_current(gdir: Path, descriptor: str, ids: Sequence[str], paths: Sequence[str], *,
                     kind: str | None = None, nlist: int | None = None, nprobe: int | None = None) -> bool:
    """True when `gdir` holds a complete index of exactly this gallery with this descriptor (and,
    when given, this index kind and IVF parameters)."""
    import json

    meta_path = Path(gdir) / META_FILE
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if kind is not None and (meta.get("kind"), meta.get("nlist"), meta.get("nprobe")) != (kind, nlist, nprobe):
        return False
    return meta.get("descriptor") == descriptor and meta.get("list_sha256") == list_checksum(ids, paths)


def compute_features(loaders: Sequence, descriptor: Descriptor, work_dir: Path, *, chunk: int = CHUNK,
                     quiet: bool = False) -> np.ndarray:
    """Descriptors of every image (`loaders[i].load()` -> (H, W, 3) uint8), chunked and resumable."""
    from tqdm.auto import tqdm

    work_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    n_chunks = (len(loaders) + chunk - 1) // chunk
    for c in tqdm(range(n_chunks), desc=f"gallery {descriptor.name}", unit="chunk", disable=quiet, leave=False):
        path = work_dir / f"{c:06d}.npy"
        size = min(chunk, len(loaders) - c * chunk)
        if path.is_file():
            feats = np.load(path, allow_pickle=False)
            if feats.shape == (size, descriptor.dim):
                parts.append(feats)
                continue
        images = [loaders[i].load() for i in range(c * chunk, c * chunk + size)]
        feats = descriptor(images).astype(np.float32)
        with atomic_path(path, suffix=".npy") as tmp:
            np.save(tmp, feats, allow_pickle=False)
        parts.append(feats)
    return np.concatenate(parts) if parts else np.zeros((0, descriptor.dim), np.float32)


def ensure_gallery(gdir: str | Path, folder: str | Path | None, features: str, *, device: str | None = None,
                   kind: str = "auto", quiet: bool = True, allow_unverified: bool = False,
                   nlist: int | None = None, nprobe: int | None = None) -> Path:
    """Build (or reuse) the index of the gallery `folder` (None: scikit-image's stills) in `gdir`.
    kind "auto" is IVF above IVF_ABOVE images, else flat; `nlist`/`nprobe` (IVF only) default to
    `default_nlist(n)` and nlist // 8."""
    gdir = Path(gdir)
    stills = list_stills(Path(folder) if folder is not None else None)
    ids = [s.still_id for s in stills]
    paths = [s.origin for s in stills]
    if kind == "auto":
        kind = "ivf" if len(ids) > IVF_ABOVE else "flat"
    if kind == "flat":
        nlist = nprobe = None
    elif kind == "ivf":
        nlist = nlist or default_nlist(len(ids))
        nprobe = nprobe or max(1, nlist // 8)
        if not 1 <= nlist <= len(ids) or not 1 <= nprobe <= nlist:
            raise InputError(f"IVF needs 1 <= nprobe <= nlist <= gallery size (nlist {nlist}, nprobe {nprobe}, "
                             f"{len(ids)} images)", path=folder, hint="choose smaller --nlist/--nprobe or --index flat")
    if index_is_current(gdir, features, ids, paths, kind=kind, nlist=nlist, nprobe=nprobe):
        return gdir
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise InputError(f"gallery images share ids: {', '.join(dup)}", path=folder,
                         hint="give the gallery images distinct file names")
    desc = get_descriptor(features, device=resolve_device(device), allow_unverified=allow_unverified)
    work = gdir / "features" / f"{features}-{list_checksum(ids, paths)[:12]}"
    feats = compute_features(stills, desc, work, quiet=quiet)
    GalleryIndex.build(feats, ids, paths, descriptor=features, kind=kind, nlist=nlist, nprobe=nprobe).save(gdir)
    # Chunks of other builds (another descriptor or gallery) are stale now.
    for other in (gdir / "features").iterdir():
        if other != work:
            shutil.rmtree(other, ignore_errors=True)
    return gdir


class Gallery:
    """A loaded gallery: its index and the descriptor that queries it."""

    def __init__(self, index: GalleryIndex, descriptor: Descriptor):
        self.index = index
        self.descriptor = descriptor
        self._pos: dict[str, int] | None = None

    def search(self, frames: np.ndarray | Sequence[np.ndarray], k: int) -> list[list[dict]]:
        """Per query frame, the k nearest gallery images as {"id", "path", "score"}, best first."""
        res = self.index.search(self.descriptor(frames), k)
        return [[{"id": self.index.ids[i], "path": self.index.paths[i], "score": float(s)}
                 for s, i in zip(srow.tolist(), irow.tolist()) if i >= 0]
                for srow, irow in zip(res.scores, res.ids)]

    def references(self, key_frames: np.ndarray | Sequence[np.ndarray], k: int = 5, **kw) -> list[Reference]:
        """Top-k (id, score) for one clip's key frames (see `top_k_for_clip`)."""
        return top_k_for_clip(key_frames, self.index, self.descriptor, k, **kw)

    def path_of(self, gallery_id: str) -> str:
        if self._pos is None:
            self._pos = {g: i for i, g in enumerate(self.index.ids)}
        return self.index.paths[self._pos[gallery_id]]

    def weights_used(self) -> dict[str, WeightFile]:
        return self.descriptor.weights_used()


def load_gallery(gdir: str | Path, features: str, device: str | None = None, *,
                 allow_unverified: bool = False) -> Gallery:
    """Load the index in `gdir` (built with `features`) and the matching descriptor on `device`."""
    dev = resolve_device(device)
    index = GalleryIndex.load(gdir, descriptor=features, device=dev)
    return Gallery(index, get_descriptor(features, device=dev, allow_unverified=allow_unverified))
