"""The per-clip stages of a shard: load -> augment -> references -> flow -> write.

References and flow are other modules' work (vcbench.retrieval, vcbench.flow); this file only
adapts them to clips: which frames are queried, how pairs are batched, how results are stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vcbench.datasets.augment import (augment_video, draw_pseudo_params, draw_video_params, params_json,
                                      pseudo_video, rng_for)
from vcbench.datasets.stills import Still
from vcbench.errors import InputError

GPU_FLOWS = ("raft", "flownet2")
GPU_FEATURES = ("vgg19",)
TOP_K = 5


def stage_needs_gpu(cfg) -> bool:
    """Whether a shard task should ask the cluster for a GPU (learned flow or descriptors)."""
    return cfg.flow in GPU_FLOWS or cfg.features in GPU_FEATURES


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def key_frame_indices(n: int) -> list[int]:
    """First, middle and last frame: the clip's content at its start, centre and end."""
    return sorted({0, n // 2, n - 1})


# ------------------------------------------------------------------------------------------- flow
@dataclass
class FlowResult:
    forward: np.ndarray  # (T-1, H, W, 2) float32, frame t -> t+1
    backward: np.ndarray  # (T-1, H, W, 2) float32, frame t+1 -> t
    valid: np.ndarray  # (T-1, H, W) bool, pixel of frame t not occluded in t+1 (Lai's test)


class FlowStage:
    """Forward and backward flow of every consecutive pair, and Lai's occlusion masks, batched."""

    def __init__(self, name: str, device: str | None = None, batch: int = 8):
        from vcbench.flow.estimators import get_estimator

        self.estimator = get_estimator(name, device or _device())
        self.device = device or _device()
        self.batch = batch

    def __call__(self, frames: np.ndarray) -> FlowResult:
        import torch

        from vcbench.flow.occlusion import occlusion_mask

        t = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
        fws, bws, valids = [], [], []
        with torch.no_grad():
            for s in range(0, len(frames) - 1, self.batch):
                a = t[s:min(s + self.batch, len(frames) - 1)].to(self.device)
                b = t[s + 1:min(s + self.batch, len(frames) - 1) + 1].to(self.device)
                fw = self.estimator(a, b).float()
                bw = self.estimator(b, a).float()
                occ = occlusion_mask(fw, bw)
                fws.append(fw.permute(0, 2, 3, 1).cpu().numpy())
                bws.append(bw.permute(0, 2, 3, 1).cpu().numpy())
                valids.append((occ[:, 0] < 0.5).cpu().numpy())
        return FlowResult(np.concatenate(fws), np.concatenate(bws), np.concatenate(valids))


# ------------------------------------------------------------------------------------- references
def gallery_dir(out_root: Path) -> Path:
    return Path(out_root) / "gallery"


def gallery_images(folder: Path | None) -> list[tuple[str, str]]:
    """(id, path) of every gallery image: a folder's images (ids from relative paths, no dots, as
    DEVC's pairs file needs), or scikit-image's stills (`skimage:<name>`) offline."""
    from vcbench.datasets.sources import safe_id
    from vcbench.datasets.stills import list_stills
    from vcbench.frames import IMAGE_EXTENSIONS, natural_key

    if folder is None:
        return [(s.still_id, s.origin) for s in list_stills(None)]
    if not folder.is_dir():
        raise InputError("gallery folder not found", path=folder, hint="point --gallery at a folder of images (e.g. ImageNet train)")
    files = sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                    and not any(part.startswith(".") for part in p.relative_to(folder).parts)),
                   key=lambda p: natural_key(str(p.relative_to(folder))))
    if not files:
        raise InputError("no images in the gallery folder", path=folder, hint="it should hold .jpg/.JPEG/.png images")
    out, seen = [], set()
    for p in files:
        gid = safe_id(p.stem)
        if gid in seen:  # same base name in two class folders: prefix the folder
            gid = safe_id(str(p.relative_to(folder).with_suffix("")).replace("/", "__"))
        seen.add(gid)
        out.append((gid, str(p.resolve())))
    return out


def _load_gallery_image(path: str) -> np.ndarray:
    from vcbench.datasets.stills import load_skimage_still
    from vcbench.frames import read_image

    return load_skimage_still(path.split(":", 1)[1]) if path.startswith("skimage:") else read_image(path)


def prepare_gallery(cfg, out_root: Path, *, batch: int = 64, quiet: bool = True) -> Path | None:
    """Describe every gallery image with `cfg.features` and save a faiss index in OUT/gallery, once
    per build (kept when complete: its sidecar is written last). None when references are off."""
    if cfg.features == "none":
        return None
    from tqdm import tqdm

    from vcbench.retrieval.descriptors import get_descriptor
    from vcbench.retrieval.index import META_FILE, GalleryIndex

    folder = gallery_dir(out_root)
    if (folder / META_FILE).is_file():
        return folder
    items = gallery_images(Path(cfg.gallery) if cfg.gallery else None)
    desc = get_descriptor(cfg.features, _device())
    feats = []
    for s in tqdm(range(0, len(items), batch), unit="batch", desc="gallery", disable=quiet):
        feats.append(desc([_load_gallery_image(p) for _, p in items[s:s + batch]]))
    GalleryIndex.build(np.concatenate(feats), [i for i, _ in items], [p for _, p in items],
                       descriptor=desc.name).save(folder)
    return folder


class ReferenceStage:
    """Top-5 gallery images for a clip: each key frame queries the index; per gallery image the
    best score over the key frames counts; the five best, ties broken by gallery id."""

    def __init__(self, out_root: Path, features: str, device: str | None = None, k: int = TOP_K):
        from vcbench.retrieval.descriptors import get_descriptor
        from vcbench.retrieval.index import GalleryIndex

        dev = device or _device()
        self.descriptor = get_descriptor(features, dev)
        self.index = GalleryIndex.load(gallery_dir(out_root), descriptor=self.descriptor.name, device=dev)
        self.k = k

    def __call__(self, frames: np.ndarray) -> list[dict]:
        keys = frames[key_frame_indices(len(frames))]
        res = self.index.search(self.descriptor(keys), self.k)
        best: dict[int, float] = {}
        for row_s, row_i in zip(res.scores, res.ids):
            for s, i in zip(row_s, row_i):
                if i >= 0 and (int(i) not in best or float(s) > best[int(i)]):
                    best[int(i)] = float(s)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], self.index.ids[kv[0]]))[: self.k]
        return [{"id": self.index.ids[i], "path": self.index.paths[i], "score": round(s, 6)} for i, s in ranked]


# -------------------------------------------------------------------------------------- the chain
class ClipStages:
    """Everything one shard task needs, built once per task in the worker."""

    def __init__(self, cfg, out_root: Path):
        self.cfg = cfg
        self.out_root = Path(out_root)
        self.flow = FlowStage(cfg.flow) if cfg.flow != "none" else None
        self.refs = ReferenceStage(self.out_root, cfg.features) if cfg.features != "none" else None
        self._stills: dict[str, np.ndarray] = {}

    def _load(self, entry: dict) -> np.ndarray | None:
        if entry["kind"] == "video":
            from vcbench.datasets.pipeline import extract_dir

            path = extract_dir(self.out_root, entry["video_id"]) / f"{entry['base_clip']}.npy"
            if not path.is_file():
                raise InputError("extracted clip missing from the work cache", path=path,
                                 hint="rerun the same command; the video is extracted again")
            return np.load(path, allow_pickle=False)
        key = entry["origin"]
        if key not in self._stills:
            self._stills = {key: Still(entry["video_id"], key).load()}  # one still cached at a time
        return self._stills[key]

    def _augment(self, entry: dict, data: np.ndarray) -> tuple[np.ndarray, dict]:
        spec = self.cfg.spec
        rng = rng_for(self.cfg.seed, entry["clip_id"])
        if entry["kind"] == "video":
            if entry["variant"] == 0:
                return data, {"kind": "original"}
            params = draw_video_params(rng, spec.height, spec.width)
            return augment_video(data, params), params
        params = draw_pseudo_params(rng, spec.length)
        return pseudo_video(data, params, spec.length, spec.height, spec.width), params

    def run(self, entry: dict, writer, timings: dict) -> dict:
        t0 = time.perf_counter()
        data = self._load(entry)
        t1 = time.perf_counter()
        frames, params = self._augment(entry, data)
        t2 = time.perf_counter()
        refs = self.refs(frames) if self.refs is not None else []
        t3 = time.perf_counter()
        flow = self.flow(frames) if self.flow is not None else None
        t4 = time.perf_counter()
        files = writer.write_frames(entry["clip_id"], frames, self.cfg.frame_format)
        flow_files = writer.write_flow(entry["clip_id"], flow.forward, flow.backward, flow.valid) if flow else {}
        t5 = time.perf_counter()
        for k, a, b in (("load", t0, t1), ("augment", t1, t2), ("references", t2, t3), ("flow", t3, t4), ("write", t4, t5)):
            timings[k] += b - a
        n, h, w = frames.shape[:3]
        return {
            "clip_id": entry["clip_id"], "shard": writer.index, "kind": entry["kind"], "source": entry["source"],
            "video_id": entry["video_id"], "licence": entry["licence"], "origin": entry["origin"],
            "shot": entry["shot"], "start_frame": entry["start_frame"], "end_frame": entry["end_frame"],
            "variant": entry["variant"], "augmentation": params_json(params), "num_frames": n, "height": h,
            "width": w, "frame_format": self.cfg.frame_format, "files": files, "references": refs,
            "flow_estimator": self.cfg.flow, "flow_files": flow_files, "measures": entry["measures"],
        }


def build_clip_stages(cfg, out_root: Path) -> ClipStages:
    return ClipStages(cfg, out_root)
