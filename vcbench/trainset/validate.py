"""Every check a build makes before work: settings (clip count, frame format, flow estimator and
descriptor names, index and label options), the weight files (found and hash-checked without
building a network), and whether OUT may be resumed (it must hold this build or nothing).

All of it runs before any source is fetched or video decoded, so a mistake fails in a second with
one line, and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path

from vcbench.errors import InputError
from vcbench.flow.registry import estimator_names
from vcbench.labels import read_label_file
from vcbench.retrieval.descriptors import DESCRIPTORS
from vcbench.stills import list_stills
from vcbench.trainset import shards as shardio
from vcbench.trainset.config import BuildConfig, WeightsRecord, build_id, build_record, identity_json
from vcbench.trainset.labels import gallery_labels
from vcbench.trainset.layout import BuildLayout
from vcbench.trainset.manifest import read_build_metadata
from vcbench.trainset.stages import stage_weight_names
from vcbench.weights import WeightFile, digests, resolve, unverified


def resolve_build_weights(cfg: BuildConfig, *, allow_unverified: bool = False, quiet: bool = True) -> WeightsRecord:
    """Find (and hash-check) every weight file the build's flow and descriptors need, without
    building a network: run before any source is fetched or video decoded, so missing or bad
    weights fail in a second with the resolver's one-line WeightsError."""
    used: dict[str, WeightFile] = {}
    for name in stage_weight_names(cfg):
        used.update(resolve(name, allow_unverified=allow_unverified, quiet=quiet).used())
    return WeightsRecord(tuple(sorted(digests(used).items())), bool(unverified(used)))


def check_build_options(cfg: BuildConfig) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """Every check of a build's settings that needs no source, index or network (clip count, frame
    format, stage names, index and label options); returns the parsed (gallery, clip) labels."""
    if cfg.clips < 1:
        raise InputError(f"--clips must be at least 1 (got {cfg.clips})")
    if cfg.frame_format not in shardio.FRAME_FORMATS:
        raise InputError(f"unknown frame format {cfg.frame_format!r}", hint=f"choose one of {', '.join(shardio.FRAME_FORMATS)}")
    check_stage_names(cfg)
    return check_retrieval_options(cfg)


def check_stage_names(cfg) -> None:
    """An unknown flow estimator or descriptor is refused before any work (names only, no model built)."""
    if cfg.flow != "none" and cfg.flow not in estimator_names():
        raise InputError(f"unknown flow estimator {cfg.flow!r}", hint=f"use one of {', '.join(estimator_names())} or none")
    if cfg.features != "none" and cfg.features not in DESCRIPTORS:
        raise InputError(f"unknown descriptor {cfg.features!r}", hint=f"use one of {', '.join(DESCRIPTORS)} or none")


def check_retrieval_options(cfg: BuildConfig) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """Validate index and label options before any work; returns the parsed (gallery, clip) labels,
    with every gallery image checked to have a class."""
    if cfg.index not in ("auto", "flat", "ivf"):
        raise InputError(f"unknown gallery index {cfg.index!r}", hint="use flat, ivf or auto")
    for name, v in (("--nlist", cfg.nlist), ("--nprobe", cfg.nprobe)):
        if v is not None and v < 1:
            raise InputError(f"{name} must be at least 1 (got {v})")
    if cfg.index == "flat" and (cfg.nlist or cfg.nprobe):
        raise InputError("--nlist/--nprobe apply to an IVF index only", hint="add --index ivf or drop them")
    if cfg.nlist and cfg.nprobe and cfg.nprobe > cfg.nlist:
        raise InputError(f"--nprobe ({cfg.nprobe}) cannot exceed --nlist ({cfg.nlist})")
    if (cfg.gallery_labels or cfg.clip_labels) and cfg.features == "none":
        raise InputError("class labels filter references, but references are off (--features none)",
                         hint="drop --gallery-labels/--clip-labels or choose a descriptor")
    if cfg.clip_labels and not cfg.gallery_labels:
        raise InputError("--clip-labels needs --gallery-labels (the classes of the gallery images)")
    if cfg.features == "none" or not (cfg.gallery_labels or cfg.nlist):
        return None, None
    stills = list_stills(Path(cfg.gallery) if cfg.gallery else None)
    if cfg.nlist and cfg.nlist > len(stills):
        raise InputError(f"--nlist {cfg.nlist} exceeds the gallery's {len(stills)} images", path=cfg.gallery,
                         hint="choose a smaller --nlist or --index flat")
    if not cfg.gallery_labels:
        return None, None
    glabels = read_label_file(cfg.gallery_labels, "gallery labels")
    gallery_labels(stills, cfg.gallery, glabels, cfg.gallery_labels)
    clabels = read_label_file(cfg.clip_labels, "clip labels") if cfg.clip_labels else None
    return glabels, clabels


def _read_json_dict(path: Path) -> dict | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _recorded_build_ids(out: Path) -> tuple[dict[str, str | None], bool]:
    """The build ids the folder's records carry ({record: id or None}), and whether it holds any
    build output at all (plan, candidates, shards, manifest or extraction cache)."""
    layout = BuildLayout(out)
    ids: dict[str, str | None] = {}
    if layout.plan_json.is_file():
        ids[layout.rel(layout.plan_json)] = (_read_json_dict(layout.plan_json) or {}).get("build_id")
    for stats in layout.shard_stats_files():
        ids[layout.rel(stats)] = (_read_json_dict(stats) or {}).get("build_id")
    if layout.manifest.is_file():
        try:
            meta = read_build_metadata(layout.manifest)
        except Exception:  # noqa: BLE001 - an unreadable manifest names no build
            meta = None
        ids[layout.rel(layout.manifest)] = build_id(meta) if meta else None
    holds = bool(ids) or layout.candidates.is_file() or any(
        d.is_dir() and any(d.iterdir()) for d in (layout.shards, layout.work))
    return ids, holds


def check_resume(out: Path, cfg: BuildConfig, weights: WeightsRecord) -> None:
    """Refuse to resume a folder that holds another build. build.json says which; when it is missing
    or unreadable, the build ids in plan.json, the shard stats and the manifest must all be this
    build's, and a folder that holds output with no id at all is refused too (never relabelled)."""
    path = BuildLayout(out).build_json
    want = build_record(cfg, weights)
    have = _read_json_dict(path) if path.is_file() else None
    if have is None:
        ids, holds = _recorded_build_ids(out)
        if not holds:
            return
        state = "unreadable" if path.exists() else "missing"
        wid = build_id(want)
        other = next((where for where, i in ids.items() if i is not None and i != wid), None)
        if other is not None:
            raise InputError(f"build.json is {state} and {other} belongs to a build made with other settings or "
                             "weight files", path=out,
                             hint="rerun with the options that made this build to resume, or choose another --out")
        if not any(i == wid for i in ids.values()):
            raise InputError(f"build.json is {state} and nothing else here records which settings made this "
                             "build, so it cannot be resumed safely", path=out, hint="choose another --out")
        return
    settings = (lambda r: identity_json({k: v for k, v in r.items() if k != "weights"}))
    if settings(have) != settings(want):
        raise InputError("this folder holds a build made with other settings", path=out,
                         hint="rerun with the same options to resume, or choose another --out")
    if have.get("weights", want["weights"]) != want["weights"]:
        raise InputError(f"this folder holds a build made with other weight files ({have['weights']}; now "
                         f"{want['weights']})", path=out,
                         hint="put the original weight files back to resume, or choose another --out")
