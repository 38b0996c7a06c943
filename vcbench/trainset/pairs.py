"""`build-pairs`: an ImageNet-style folder -> DEVC's reference pair set (`--data_root_imagenet`).

DEVC's train.py concatenates its video clips with pairs of same-class ImageNet images (an image and
an exemplar that looks like it); its loader makes a pseudo-video of each image itself. This builds
those pairs with vcbench's retrieval: gray-image descriptors (`weightfree_gray` offline, `vgg19` as
the references use), a faiss index per class, the `top_k` nearest per image, and three tiers
(`vcbench.trainset.pair_stages`). One shard per class, run like build-dataset's shards (local pool or
Ray, `vcbench.executors`) with its guarantees: an exclusive lock on OUT, every shard written in its
writer's private folder and committed only when its files match their sha256 and the build still
holds the lock, resumable, byte-identical on the CPU (descriptors single-threaded).

Sources: `sample` (scikit-image's stills, each a class of `views` seeded crops: offline), `local`
(DIR/<class>/<image>), `imagenet` (the same, with WordNet-id class folders: ILSVRC's train folder).

Layout of OUT:
  build.json              settings ("kind": "pairs"), weight files {file: sha256}
  plan.json               the classes: name, shard, image count, sha256 of the image list
  shards/shard-NNNNN/     one class: manifest.parquet (one row per image: id, origin, sha256, size,
                          stored file, neighbours), pairs.parquet (a, b, tier, rank, score) and,
                          for generated images (sample), images/<id>.JPEG
  shards/shard-NNNNN.stats.json, manifest.parquet, pairs.parquet, stats.json
Source images are not copied (ImageNet train is 140 GB): the manifest records each one's path and
sha256 (`datasets verify` checks them) and the export links them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass
from typing import ClassVar
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import torch  # noqa: F401  (loaded before single_threaded, so its thread count is pinned too)

from vcbench import weights as vw
from vcbench.atomic import atomic_write_text
from vcbench.devices import resolve_device
from vcbench.errors import InputError, VcbenchError, WeightsError
from vcbench.executors import make_executor, single_threaded
from vcbench.frames import IMAGE_EXTENSIONS, natural_key, read_image
from vcbench.hashing import sha256_file
from vcbench.ids import safe_id
from vcbench.lock import FolderLock
from vcbench.retrieval.descriptors import DESCRIPTORS, get_descriptor
from vcbench.stills import SKIMAGE_STILLS, load_skimage_still
from vcbench.trainset import shards as shardio
from vcbench.trainset.augment import rng_for
from vcbench.trainset.config import RunOptions, WeightsRecord, build_id, build_record, write_config
from vcbench.trainset.layout import SHARD_PAIRS, BuildLayout, shard_image
from vcbench.trainset.manifest import concat_manifests, rows_table, table_bytes, write_manifest
from vcbench.trainset.pair_choices import FEATURES, SOURCES
from vcbench.trainset.pair_stages import TIERS, neighbours, sample_view, tier_pairs
from vcbench.trainset.run import clean_leftovers, progress, size_summary, wait_for_orphans
from vcbench.trainset.validate import check_resume, resolve_build_weights

PAIRS_PLAN_VERSION = 1
#: ImageNet's train set: the size the stats project to.
PROJECT_IMAGES = 1_281_167
_WNID = re.compile(r"^n\d{8}$")

IMAGE_SCHEMA = pa.schema([
    ("class", pa.string()), ("image_id", pa.string()), ("origin", pa.string()), ("sha256", pa.string()),
    ("height", pa.int32()), ("width", pa.int32()),
    ("file", pa.string()),  # stored copy inside the build ("" when the source file is used)
    ("neighbours", pa.string()),  # JSON [[image_id, rank, score], ...] nearest first
])
PAIR_SCHEMA = pa.schema([("class", pa.string()), ("a", pa.string()), ("b", pa.string()), ("tier", pa.string()),
                         ("rank", pa.int32()), ("score", pa.float64())])


@dataclass(frozen=True)
class PairConfig:
    """Everything that determines the bytes of a pair build."""

    source: str = "sample"
    input: str | None = None
    seed: int = 0
    features: str = "weightfree_gray"
    top_k: int = 5
    good_ranks: int = 2
    mid_ranks: int = 2
    views: int = 8  # sample: images per class (crops of its still)
    #: A pair build computes no flow (the build's weight files are its descriptor's alone); not a field,
    #: so not part of the identity.
    flow: ClassVar[str] = "none"

    def as_dict(self) -> dict:
        return {**asdict(self), "kind": "pairs", "plan_version": PAIRS_PLAN_VERSION}


@dataclass(frozen=True)
class ImageItem:
    image_id: str
    origin: str  # absolute path, or "skimage:<still>#<view>" for a generated view


# ----------------------------------------------------------------------------------------- source
def _class_images(folder: Path) -> list[ImageItem]:
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                   key=lambda p: natural_key(p.name))
    items, seen = [], {}
    for p in files:
        iid = safe_id(p.stem)  # DEVC cuts names at the first '.': ids have none
        if iid in seen:
            raise InputError(f"images {seen[iid]} and {p.name} of class {folder.name!r} both become {iid!r} in "
                             "DEVC's pair files", path=folder, hint="rename one of them")
        seen[iid] = p.name
        items.append(ImageItem(iid, str(p.resolve())))
    return items


def list_classes(cfg: PairConfig) -> list[tuple[str, list[ImageItem]]]:
    """The source's classes in order, each with its images (natural order)."""
    if cfg.source == "sample":
        return [(name, [ImageItem(f"{name}_{j:03d}", f"skimage:{name}#{j}") for j in range(cfg.views)])
                for name in SKIMAGE_STILLS]
    if cfg.input is None:
        raise InputError(f"--source {cfg.source} needs --input DIR (one sub-folder of images per class)")
    root = Path(cfg.input)
    if not root.is_dir():
        raise InputError("input folder not found", path=root, hint="point --input at a folder of class sub-folders")
    dirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: natural_key(d.name))
    if cfg.source == "imagenet":
        if not any(_WNID.match(d.name) for d in dirs) and (root / "train").is_dir():
            return list_classes(PairConfig(**{**asdict(cfg), "input": str(root / "train")}))
        odd = [d.name for d in dirs if not _WNID.match(d.name)]
        if odd or not dirs:
            raise InputError(f"not an ImageNet train folder: {'no class folders' if not dirs else repr(odd[0])} "
                             "(class folders are WordNet ids such as n01440764)", path=root,
                             hint="point --input at ILSVRC's train folder, or use --source local for other classes")
    if not dirs:
        raise InputError("no class sub-folders in the input folder", path=root,
                         hint="arrange the images as DIR/<class>/<image>.JPEG")
    return [(d.name, _class_images(d)) for d in dirs]


def list_sha256(items: list[ImageItem]) -> str:
    return hashlib.sha256("".join(f"{i.image_id}\t{i.origin}\n" for i in items).encode()).hexdigest()


def _load(cfg: PairConfig, item: ImageItem) -> tuple[np.ndarray, bytes | None, str]:
    """(RGB image, the JPEG bytes to store for a generated one or None, sha256 of its bytes)."""
    if item.origin.startswith("skimage:"):
        still = item.origin.split(":", 1)[1].split("#")[0]
        data = shardio.encode_image(sample_view(load_skimage_still(still), rng_for(cfg.seed, f"pairs:{item.image_id}")), "jpg")
        img = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return img, data, shardio.sha256_bytes(data)  # described as stored (and exported): the decoded JPEG
    return read_image(item.origin), None, sha256_file(item.origin)


# ----------------------------------------------------------------------------------------- shards
@dataclass(frozen=True)
class PairShardTask:
    out_root: str
    index: int
    class_name: str
    images: tuple[ImageItem, ...]
    config: PairConfig
    weights: WeightsRecord
    allow_unverified: bool = False
    owner: str | None = None
    build_id: str = ""
    device: str | None = None


def run_pair_shard(task: PairShardTask) -> dict:
    """One class: load, describe, search, tier, write; returns its stats."""
    cfg, out_root = task.config, Path(task.out_root)
    device = resolve_device(task.device)
    t0 = time.perf_counter()
    writer = shardio.ShardWriter(out_root, task.index, task.owner)
    failures, rows, pairs = [], [], []
    try:
        with single_threaded():
            desc = get_descriptor(cfg.features, device=device, allow_unverified=task.allow_unverified)
            used = vw.digests(desc.weights_used())
            if used != dict(task.weights.files):
                raise WeightsError(f"shard {task.index}: this worker loaded weights {used} but the "
                                   f"build uses {dict(task.weights.files)}", hint="give every worker the same weight files")
            images, kept, digests, files = [], [], [], []
            for item in task.images:
                try:
                    img, data, digest = _load(cfg, item)
                except InputError as exc:  # an unreadable image is recorded and left out, not fatal
                    failures.append({"image_id": item.image_id, "origin": item.origin, "reason": str(exc)})
                    continue
                rel = writer.put(shard_image(item.image_id), data, "images")[0] if data is not None else ""
                images.append(img)
                kept.append(item)
                digests.append(digest)
                files.append(rel)
            t1 = time.perf_counter()
            feats = desc(images) if images else np.zeros((0, desc.dim), np.float32)
            t2 = time.perf_counter()
            ids = [i.image_id for i in kept]
            nbrs = neighbours(feats, ids, digests, cfg.top_k, cfg.features, device) if len(ids) > 1 else [[] for _ in ids]
            pairs = [{"class": task.class_name, **p} for p in tier_pairs(nbrs, ids, cfg.good_ranks, cfg.mid_ranks)]
            t3 = time.perf_counter()
        for item, img, digest, rel, nb in zip(kept, images, digests, files, nbrs):
            rows.append({"class": task.class_name, "image_id": item.image_id, "origin": item.origin, "sha256": digest,
                         "height": int(img.shape[0]), "width": int(img.shape[1]), "file": rel,
                         "neighbours": [[ids[n.image], n.rank, n.score] for n in nb]})
        writer.put(SHARD_PAIRS, table_bytes(rows_table(pairs, PAIR_SCHEMA, ())), "pairs")
        write_manifest(rows, writer.manifest_path(), IMAGE_SCHEMA, ("neighbours",))
        manifest_sha = shardio.sha256_bytes(writer.manifest_path().read_bytes())
        files_sha = dict(sorted(writer.files.items()))
        byte_counts = dict(sorted(writer.bytes.items()))
        writer.commit(manifest_sha)
    except BaseException:
        writer.abort()
        raise
    stats = {
        "shard": task.index, "class": task.class_name, "count": len(task.images), "successes": len(rows),
        "failed": len(failures), "failures": failures, "manifest_sha256": manifest_sha, "files": files_sha,
        "bytes": byte_counts, "pairs": {t: sum(p["tier"] == t for p in pairs) for t in TIERS},
        "image_ids": [r["image_id"] for r in rows], **task.weights.as_dict(), "build_id": task.build_id,
        "timings": {"load": round(t1 - t0, 4), "describe": round(t2 - t1, 4), "search": round(t3 - t2, 4),
                    "total": round(time.perf_counter() - t0, 4)},
    }
    shardio.write_stats(out_root, task.index, stats)
    return stats


# ------------------------------------------------------------------------------------------ build
def check_pair_config(cfg: PairConfig) -> None:
    if cfg.source not in SOURCES:
        raise InputError(f"unknown pair source {cfg.source!r}", hint=f"use one of {', '.join(SOURCES)}")
    if cfg.features not in FEATURES:
        raise InputError(f"descriptor {cfg.features!r} is not computed on the gray image",
                         hint=f"use one of {', '.join(FEATURES)}")
    for name, v, low in (("--top-k", cfg.top_k, 1), ("--good-ranks", cfg.good_ranks, 1), ("--mid-ranks", cfg.mid_ranks, 0),
                         ("--views", cfg.views, 2)):
        if v < low:
            raise InputError(f"{name} must be at least {low} (got {v})")
    if cfg.good_ranks > cfg.top_k:
        raise InputError(f"--good-ranks ({cfg.good_ranks}) cannot exceed --top-k ({cfg.top_k})")
    if cfg.source == "sample" and cfg.input is not None:
        raise InputError("--source sample takes no --input", hint="use --source local --input DIR for your images")


def build_pairs(cfg: PairConfig, out: Path, opts: RunOptions | None = None) -> dict:
    """Run (or resume) a pair build into `out`; returns the totals written to `out/stats.json`."""
    opts = opts or RunOptions()
    check_pair_config(cfg)
    out = Path(out)
    classes = list_classes(cfg)  # before the lock: a bad --input fails with nothing written
    weights = resolve_build_weights(cfg, allow_unverified=opts.allow_unverified, quiet=opts.quiet)
    with FolderLock(out, "build") as lock:
        return _build_locked(cfg, out, opts, weights, classes, lock.token)


def _build_locked(cfg: PairConfig, out: Path, opts, weights, classes, token: str) -> dict:
    layout = BuildLayout(out)
    check_resume(out, cfg, weights)
    record = build_record(cfg, weights)
    bid = build_id(record)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    write_config(out, cfg, weights)
    clean_leftovers(out)
    plan_path = layout.plan_json
    current = [{"class": name, "count": len(items), "list_sha256": list_sha256(items)}
               for name, items in classes if len(items) >= 2]
    for i, c in enumerate(current):
        c["shard"] = i
    skipped = [name for name, items in classes if len(items) < 2]
    if plan_path.is_file():
        plan = json.loads(plan_path.read_text())
        if plan["classes"] != current:
            raise InputError("the input folder changed since this build was planned (classes or images differ)",
                             path=cfg.input, hint="restore the input, or build into another --out")
    else:
        if not current:
            raise InputError("no class holds two images, so there is nothing to pair", path=cfg.input,
                             hint="give every class folder at least two images")
        plan = {"build_id": bid, "classes": current, "skipped_classes": skipped}
        atomic_write_text(plan_path, json.dumps(plan, sort_keys=True) + "\n")
    items = {name: tuple(v) for name, v in classes}
    pending = [c for c in plan["classes"] if not shardio.shard_complete(out, c["shard"])]
    tasks = [PairShardTask(str(out), c["shard"], c["class"], items[c["class"]], cfg, weights, opts.allow_unverified,
                           token, bid, opts.device) for c in pending]
    executor = make_executor(opts.executor, workers=opts.workers, address=opts.address,
                             num_gpus_per_task=opts.num_gpus_per_task)
    try:
        with progress(len(plan["classes"]), "class", "pairs", opts.quiet,
                       initial=len(plan["classes"]) - len(tasks)) as bar:
            for _ in executor.map(run_pair_shard, tasks, gpu=DESCRIPTORS.spec(cfg.features).needs_gpu,
                                  describe=lambda t: f"building shard {t.index} (class {t.class_name})"):
                bar.update(1)
    finally:
        executor.close()
    wait_for_orphans(out)
    n_shards = len(plan["classes"])
    incomplete = [i for i in range(n_shards) if not shardio.shard_complete(out, i)]
    if incomplete:
        raise VcbenchError(f"{len(incomplete)} shard(s) are not complete after the build (first: shard {incomplete[0]})",
                           path=out, hint="rerun the same command to resume")
    n_images = concat_manifests([layout.shard_manifest(i) for i in range(n_shards)], layout.manifest, build=record,
                                schema=IMAGE_SCHEMA)
    concat_manifests([layout.shard_pairs(i) for i in range(n_shards)], layout.pairs, schema=PAIR_SCHEMA)
    stats = [json.loads(layout.shard_stats(i).read_text()) for i in range(n_shards)]
    tiers = {t: sum(s["pairs"][t] for s in stats) for t in ("good", "mid", "bad")}
    totals = {"kind": "pairs", "classes": n_shards, "skipped_classes": len(plan.get("skipped_classes", [])),
              "images": n_images, "image_failures": sum(s["failed"] for s in stats), "pairs": tiers,
              **weights.as_dict(), **size_summary(stats, n_images, PROJECT_IMAGES, "image"),
              "timings": {"wall_s": round(time.perf_counter() - t0, 3)}}
    atomic_write_text(layout.stats_json, json.dumps(totals, indent=1, sort_keys=True) + "\n")
    return totals
