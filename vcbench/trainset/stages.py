"""A shard task (`ShardTask`, `run_shard`) and the per-clip stages it runs: load -> augment ->
references -> flow -> write.

References and flow are other modules' work (vcbench.retrieval, vcbench.flow); this file only
adapts them to clips: which frames are queried, how pairs are batched, how results are stored.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vcbench.atomic import atomic_write_text
from vcbench.errors import InputError, WeightsError
from vcbench.devices import resolve_device
from vcbench.executors import single_threaded
from vcbench.flow.pairs import flow_pairs
from vcbench.flow.registry import ESTIMATORS, get_estimator
from vcbench.labels import read_label_file
from vcbench.retrieval.build import ensure_gallery, load_gallery
from vcbench.retrieval.descriptors import DESCRIPTORS
from vcbench.retrieval.topk import key_frame_indices
from vcbench.trainset import shards as shardio
from vcbench.trainset.augment import (augment_video, draw_pseudo_params, draw_video_params, params_json,
                                      pseudo_video, rng_for)
from vcbench.trainset.config import BuildConfig, WeightsRecord
from vcbench.trainset.labels import gallery_labels
from vcbench.trainset.layout import BuildLayout
from vcbench.trainset.manifest import write_manifest
from vcbench.stills import Still, list_stills
from vcbench.weights import WeightFile, digests

TOP_K = 5


def _stage_specs(cfg) -> list:
    """The registry specs of the build's flow estimator and descriptor ("none": no stage, no spec);
    what each loads and whether it wants a GPU are their facts, not this module's."""
    return ([ESTIMATORS.spec(cfg.flow)] if cfg.flow != "none" else []) + \
        ([DESCRIPTORS.spec(cfg.features)] if cfg.features != "none" else [])


def stage_weight_names(cfg) -> list[str]:
    """Registry names of the weight files the build's flow and reference stages load."""
    return sorted({w for spec in _stage_specs(cfg) for w in spec.weights})


def stage_needs_gpu(cfg) -> bool:
    """Whether a shard task should ask the cluster for a GPU (learned flow or descriptors)."""
    return any(spec.needs_gpu for spec in _stage_specs(cfg))


# ------------------------------------------------------------------------------------------- flow
@dataclass
class FlowResult:
    forward: np.ndarray  # (T-1, H, W, 2) float32, frame t -> t+1
    backward: np.ndarray  # (T-1, H, W, 2) float32, frame t+1 -> t
    valid: np.ndarray  # (T-1, H, W) bool, pixel of frame t not occluded in t+1 (Lai's test)


class FlowStage:
    """Forward and backward flow of every consecutive pair and Lai's occlusion masks: the scorer's
    `vcbench.flow.pairs.flow_pairs`, `batch` pairs per estimator call, as numpy arrays to store."""

    def __init__(self, name: str, device: str | None = None, batch: int = 8, *, allow_unverified: bool = False):
        self.device = resolve_device(device)
        self.estimator = get_estimator(name, self.device, allow_unverified=allow_unverified)
        self.batch = batch

    def __call__(self, frames: np.ndarray) -> FlowResult:
        t = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).to(self.device)
        with torch.no_grad():
            pairs = flow_pairs(t, self.estimator, keep_backward=True, chunk=self.batch)
        return FlowResult(pairs.fw.permute(0, 2, 3, 1).cpu().numpy(), pairs.bw.permute(0, 2, 3, 1).cpu().numpy(),
                          (pairs.noc[:, 0] > 0.5).cpu().numpy())


# ------------------------------------------------------------------------------------- references
def prepare_gallery(cfg, out_root: Path, *, quiet: bool = True, allow_unverified: bool = False) -> Path | None:
    """Build the gallery index once per build in OUT/gallery (`vcbench.retrieval.build.ensure_gallery`:
    resumable, reused when current). None when references are off."""
    if cfg.features == "none":
        return None
    layout = BuildLayout(out_root)
    gdir = ensure_gallery(layout.gallery, cfg.gallery, cfg.features, device=None, quiet=quiet,
                          allow_unverified=allow_unverified, kind=cfg.index, nlist=cfg.nlist, nprobe=cfg.nprobe)
    if cfg.gallery_labels:
        stills = list_stills(Path(cfg.gallery) if cfg.gallery else None)
        labels = gallery_labels(stills, cfg.gallery, read_label_file(cfg.gallery_labels, "gallery labels"),
                                cfg.gallery_labels)
        atomic_write_text(layout.gallery_labels, json.dumps({"ids": [s.still_id for s in stills], "labels": labels},
                                                            sort_keys=True) + "\n")
    elif layout.gallery_labels.exists():
        layout.gallery_labels.unlink()
    return gdir


class ReferenceStage:
    """Top-5 gallery images for a clip from its first, middle and last frames: each key frame
    queries the index and a gallery image keeps its best score (`top_k_for_clip`, "max")."""

    def __init__(self, out_root: Path, features: str, device: str | None = None, k: int = TOP_K, *,
                 allow_unverified: bool = False):
        layout = BuildLayout(out_root)
        self.gallery = load_gallery(layout.gallery, features, device, allow_unverified=allow_unverified)
        self.k = k
        self.labels: list[str] | None = None
        self._label_of: dict[str, str] = {}
        lpath = layout.gallery_labels
        if lpath.is_file():
            rec = json.loads(lpath.read_text())
            if rec["ids"] != self.gallery.index.ids:
                raise InputError("gallery labels do not match the gallery index", path=lpath,
                                 hint="rerun the same command; the labels are rewritten")
            self.labels = rec["labels"]
            self._label_of = dict(zip(rec["ids"], rec["labels"]))

    def __call__(self, frames: np.ndarray, clip_label: str | None = None) -> list[dict]:
        """With gallery labels, only images of the clip's class (given, or voted by the neighbours)."""
        refs = self.gallery.references(frames[key_frame_indices(len(frames))], self.k, labels=self.labels,
                                       clip_label=clip_label if self.labels is not None else None)
        out = [{"id": gid, "path": self.gallery.path_of(gid), "score": round(float(score), 6)} for gid, score in refs]
        if self.labels is not None:
            for r in out:
                r["class"] = self._label_of[r["id"]]
        return out


# -------------------------------------------------------------------------------------- the chain
class ClipStages:
    """Everything one shard task needs, built once per task in the worker."""

    def __init__(self, cfg, out_root: Path, *, allow_unverified: bool = False):
        self.cfg = cfg
        self.out_root = Path(out_root)
        self.layout = BuildLayout(out_root)
        self.flow = FlowStage(cfg.flow, allow_unverified=allow_unverified) if cfg.flow != "none" else None
        self.refs = ReferenceStage(self.out_root, cfg.features, allow_unverified=allow_unverified) \
            if cfg.features != "none" else None
        self._stills: dict[str, np.ndarray] = {}

    def weights_used(self) -> dict[str, WeightFile]:
        """The weight files this worker's stages loaded."""
        used = dict(self.flow.estimator.weights_used()) if self.flow is not None else {}
        if self.refs is not None:
            used.update(self.refs.gallery.weights_used())
        return used

    def _load(self, entry: dict) -> np.ndarray | None:
        if entry["kind"] == "video":
            path = self.layout.extracted_clip(entry["video_id"], entry["base_clip"])
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
        refs = self.refs(frames, entry.get("clip_label")) if self.refs is not None else []
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


def build_clip_stages(cfg, out_root: Path, *, allow_unverified: bool = False) -> ClipStages:
    return ClipStages(cfg, out_root, allow_unverified=allow_unverified)


# ------------------------------------------------------------------------------------------ shards
@dataclass(frozen=True)
class ShardTask:
    out_root: str
    index: int
    entries: tuple[dict, ...]
    config: BuildConfig
    weights: WeightsRecord = WeightsRecord()
    allow_unverified: bool = False
    owner: str | None = None  # token of the build's lock; the shard is committed only while it holds
    build_id: str = ""


def run_shard(task: ShardTask) -> dict:
    """augment -> references -> flow -> write, for one shard; returns its stats."""
    out_root = Path(task.out_root)
    cfg = task.config
    timings = {"load": 0.0, "augment": 0.0, "references": 0.0, "flow": 0.0, "write": 0.0}
    t_start = time.perf_counter()
    writer = shardio.ShardWriter(out_root, task.index, task.owner)
    rows, failures = [], []
    try:
        with single_threaded():
            stages = build_clip_stages(cfg, out_root, allow_unverified=task.allow_unverified)
            used = digests(stages.weights_used())
            if used != dict(task.weights.files):  # e.g. a Ray worker whose weights cache holds other files
                raise WeightsError(f"shard {task.index}: this worker loaded weights {used} but the build uses "
                                   f"{dict(task.weights.files)}", hint="give every worker the same weight files")
            for entry in task.entries:
                try:
                    rows.append(stages.run(entry, writer, timings))
                except InputError as exc:
                    failures.append({"clip_id": entry["clip_id"], "reason": str(exc)})
        t0 = time.perf_counter()
        write_manifest(rows, writer.manifest_path())
        manifest_sha = shardio.sha256_bytes(writer.manifest_path().read_bytes())
        timings["write"] += time.perf_counter() - t0
        writer.commit(manifest_sha)
    except BaseException:
        writer.abort()
        raise
    stats = {
        "shard": task.index, "count": len(task.entries), "successes": len(rows), "failed": len(failures),
        "failures": failures, "manifest_sha256": manifest_sha, "bytes": dict(sorted(writer.bytes.items())),
        "clip_ids": [r["clip_id"] for r in rows], **task.weights.as_dict(), "build_id": task.build_id,
        "timings": {k: round(v, 4) for k, v in {**timings, "total": time.perf_counter() - t_start}.items()},
    }
    shardio.write_stats(out_root, task.index, stats)
    return stats
