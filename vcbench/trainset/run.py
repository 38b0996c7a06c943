"""`build-dataset`: sources -> extract -> plan -> (augment -> references -> flow -> write) per shard.

Resumable and idempotent by construction:
- a build holds an exclusive lock on OUT (`vcbench.lock.FolderLock`): a second build into the same
  folder is refused with one line naming the holder; the lock of a killed build is taken over;
- every unit of work (a video's extraction, a shard) is written in its writer's own temporary folder
  and renamed when complete; a shard is renamed only when its files match their recorded sha256 and
  the build that started it still holds the lock, so workers orphaned by a killed main process
  commit nothing (local pool workers also die with their parent, see `vcbench.executors`); a
  shard's stats file is written after its rename and marks it done;
- what a unit produces depends only on the build's settings and the unit's identity (clip ids are
  fixed by the plan, random numbers by (seed, clip id)), never on order, worker or timing;
- so a rerun of the same command (after a crash, Ctrl-C, kill -9 of the main process, its process
  group or a worker) removes the leftovers of dead writers, skips the complete units and redoes the
  others, and the result is byte-identical to an uninterrupted build.
Only the `timings` in stats files differ from run to run.

The folder's layout is `vcbench.trainset.layout.BuildLayout`'s. build.json holds the settings, the
weight files used {file: sha256} and `unverified_weights` (a rerun with other settings or weight
files is refused; --allow-unverified-weights alone changes no byte, so it is not compared); plan.json,
every shard's stats and the manifest carry the build's id too, so a folder whose build.json is lost
still refuses other settings. work/ (the extraction cache) is removed at the end unless keep_work.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch  # noqa: F401  (descriptors run on torch; loaded before single_threaded pins its threads)
from tqdm import tqdm

from vcbench.atomic import atomic_write_text
from vcbench.errors import VcbenchError
from vcbench.executors import make_executor, single_threaded
from vcbench.lock import FolderLock, live_private_dirs, sweep_atomic_leftovers, sweep_private_dirs
from vcbench.retrieval.index import META_FILE
from vcbench.trainset import shards as shardio
from vcbench.trainset.config import (PROJECT_CLIPS, BuildConfig, RunOptions, WeightsRecord, build_id, build_record,
                                     write_config)
from vcbench.trainset.export_devc import export_bytes_per_clip
from vcbench.trainset.extract import ExtractTask, collect_candidates, run_extract
from vcbench.trainset.layout import CANDIDATES_JSON, BuildLayout
from vcbench.trainset.manifest import concat_manifests
from vcbench.trainset.plan import attach_clip_labels, make_plan, no_clips_error
from vcbench.trainset.sources import resolve_source
from vcbench.trainset.sources.base import SourceOptions
from vcbench.trainset.stages import ShardTask, prepare_gallery, run_shard, stage_needs_gpu
from vcbench.trainset.validate import check_build_options, check_resume, resolve_build_weights

log = logging.getLogger(__name__)


def build_dataset(cfg: BuildConfig, out: Path, opts: RunOptions = RunOptions()) -> dict:
    """Run (or resume) a build into `out`; returns the totals written to `out/stats.json`."""
    glabels, clabels = check_build_options(cfg)
    out = Path(out)
    weights = resolve_build_weights(cfg, allow_unverified=opts.allow_unverified, quiet=opts.quiet)
    with FolderLock(out, "build") as lock:
        return _build_locked(cfg, out, opts, weights, glabels, clabels, lock.token)


def planned_build_id(cfg: BuildConfig, opts: RunOptions = RunOptions()) -> str:
    """The id `build_dataset(cfg)` will record (its weight files resolved and hashed, nothing built)."""
    weights = resolve_build_weights(cfg, allow_unverified=opts.allow_unverified, quiet=True)
    return build_id(build_record(cfg, weights))


def progress(total: int, unit: str, desc: str, quiet: bool, initial: int = 0):
    """tqdm bar showing items/s and the ETA; silent with --quiet."""
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, disable=quiet, dynamic_ncols=True, smoothing=0.1)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def _index_summary(gdir: Path | None) -> dict | None:
    """The gallery index actually built (kind "auto" resolved), for stats.json."""
    if gdir is None:
        return None
    meta = json.loads((gdir / META_FILE).read_text())
    return {k: meta.get(k) for k in ("kind", "nlist", "nprobe", "count", "descriptor")}


def clean_leftovers(out: Path) -> None:
    """What writers of an interrupted run left (this run holds the lock, so the main process's own
    temporary files are all stale; workers' folders are removed only when their writer is dead)."""
    layout = BuildLayout(out)
    shardio.clean_incomplete(out)
    sweep_atomic_leftovers(out)
    sweep_atomic_leftovers(layout.gallery, recursive=True)
    extract = layout.extract
    sweep_private_dirs(extract)
    for d in sorted(extract.iterdir()) if extract.is_dir() else []:
        if d.is_dir() and not d.name.startswith(".") and not (d / CANDIDATES_JSON).is_file():
            shutil.rmtree(d)  # not renamed by a writer of this layout: incomplete
        elif d.is_dir() and d.name.startswith(".") and d.name.endswith(".tmp") and d.name.count(".") == 2:
            shutil.rmtree(d)  # the layout before private writers (`.<video>.tmp`)


def wait_for_orphans(out: Path, timeout_s: float = 60.0) -> None:
    """Writers of a dead run that were still alive when this one started (a Ray task of a killed
    driver that its cluster has not stopped yet) cannot commit, and remove their folder when they
    find out; wait for that so the output holds nothing of theirs, then sweep once more."""
    layout = BuildLayout(out)
    folders = [layout.shards, layout.extract]
    deadline = time.monotonic() + timeout_s
    while any(live_private_dirs(f) for f in folders) and time.monotonic() < deadline:
        time.sleep(0.2)
    live = [n for f in folders for n in live_private_dirs(f)]
    if live:
        log.warning("%d folder(s) of writers of an earlier run are still open in %s (%s); they commit nothing "
                    "and are removed by the next run", len(live), out, ", ".join(live[:3]))
    for f in folders:
        sweep_private_dirs(f)


def _export_estimate(cfg: BuildConfig) -> dict:
    """The DEVC export's bytes per clip (`export_devc.export_bytes_per_clip`) and at PROJECT_CLIPS."""
    per = export_bytes_per_clip(cfg.spec.height, cfg.spec.width, cfg.spec.length)
    return {**per, "projection_total": per["total"] * PROJECT_CLIPS,
            "projection_total_backward_zero": per["total_backward_zero"] * PROJECT_CLIPS}


def size_summary(shard_stats: list[dict], n_items: int, project: int = PROJECT_CLIPS, unit: str = "clip") -> dict:
    """Bytes the shards hold by kind of file (frames, flow, masks, ...), per item, and projected to
    `project` items (the per-item mean times `project`: content changes flow's share, so a sample's
    figure is an estimate for another source)."""
    total: dict[str, int] = {}
    for st in shard_stats:
        for k, v in (st.get("bytes") or {}).items():
            total[k] = total.get(k, 0) + int(v)
    per = {k: round(v / n_items) for k, v in sorted(total.items())} if n_items else {}
    return {"bytes": dict(sorted(total.items())), f"bytes_per_{unit}": per,
            "projection": {f"{unit}s": project, "bytes": {k: v * project for k, v in per.items()},
                           "total_bytes": sum(per.values()) * project}}


def _build_locked(cfg: BuildConfig, out: Path, opts: RunOptions, weights: WeightsRecord,
                  glabels: dict[str, str] | None, clabels: dict[str, str] | None, token: str) -> dict:
    """The build proper, run while this process holds OUT's lock (`token` names the holding)."""
    layout = BuildLayout(out)
    check_resume(out, cfg, weights)
    bid = build_id(build_record(cfg, weights))
    t0 = time.perf_counter()

    src = resolve_source(cfg.source, SourceOptions(download_dir=layout.downloads, input=Path(cfg.input) if cfg.input else None,
                                                    urls=Path(cfg.urls) if cfg.urls else None,
                                                    min_interval_s=opts.min_interval_s, retries=opts.retries, quiet=opts.quiet))
    failures = [dict(f.as_dict(), stage="source") for f in src.failures]
    out.mkdir(parents=True, exist_ok=True)
    if not src.videos and cfg.pseudo_fraction < 1.0 and not layout.plan_json.is_file():
        # Nothing to build from: say why now, before any settings, cache or shard is written.
        _write_jsonl(layout.failures, failures)
        raise no_clips_error(cfg, 0, 0, failures, out)
    write_config(out, cfg, weights)
    clean_leftovers(out)
    executor = make_executor(opts.executor, workers=opts.workers, address=opts.address,
                             num_gpus_per_task=opts.num_gpus_per_task)
    try:
        plan_path = layout.plan_json
        plan = json.loads(plan_path.read_text())["clips"] if plan_path.is_file() else None
        needed = ({e["video_id"] for e in plan if e["kind"] == "video" and not shardio.shard_complete(out, e["shard"])}
                  if plan is not None else {v.video_id for v in src.videos})
        todo = [ExtractTask(str(out), v, cfg.spec, token) for v in src.videos
                if v.video_id in needed and not layout.candidates_json(v.video_id).is_file()]
        if todo:
            with progress(len(todo), "video", "extract", opts.quiet) as bar:
                for _ in executor.map(run_extract, todo, describe=lambda t: f"extracting video {t.video.video_id}"):
                    bar.update(1)
        if plan is None:
            candidates = collect_candidates(out, src.videos, failures)
            _write_jsonl(layout.failures, failures)
            plan = make_plan(cfg, src.videos, candidates, failures=failures, out=out)
            attach_clip_labels(cfg, plan, glabels, clabels)
            atomic_write_text(plan_path, json.dumps({"build_id": bid, "clips": plan}, sort_keys=True) + "\n")

        with single_threaded():  # descriptors in a fixed summation order: same index bytes on any machine
            gdir = prepare_gallery(cfg, out, quiet=opts.quiet, allow_unverified=opts.allow_unverified)
        n_shards = (len(plan) + cfg.shard_size - 1) // cfg.shard_size
        pending = [i for i in range(n_shards) if not shardio.shard_complete(out, i)]
        tasks = [ShardTask(str(out), i, tuple(e for e in plan[i * cfg.shard_size:(i + 1) * cfg.shard_size]), cfg,
                           weights, opts.allow_unverified, token, bid)
                 for i in pending]
        done_clips = len(plan) - sum(len(t.entries) for t in tasks)
        with progress(len(plan), "clip", "build", opts.quiet, initial=done_clips) as bar:
            for stats in executor.map(run_shard, tasks, gpu=stage_needs_gpu(cfg),
                                      describe=lambda t: f"building shard {t.index}"):
                bar.update(stats["count"])
    finally:
        executor.close()
    wait_for_orphans(out)
    incomplete = [i for i in range(n_shards) if not shardio.shard_complete(out, i)]
    if incomplete:  # never report a build done over a shard that is not all there
        raise VcbenchError(f"{len(incomplete)} shard(s) are not complete after the build (first: shard {incomplete[0]})",
                           path=out, hint="rerun the same command to resume")

    n_rows = concat_manifests([layout.shard_manifest(i) for i in range(n_shards)], layout.manifest,
                              build=build_record(cfg, weights))
    shard_stats = [json.loads(layout.shard_stats(i).read_text()) for i in range(n_shards)]
    clip_failures = [dict(f, stage="shard", shard=s["shard"]) for s in shard_stats for f in s["failures"]]
    if clip_failures:
        prior = [json.loads(line) for line in layout.failures.read_text().splitlines() if line.strip()]
        prior = [p for p in prior if p.get("stage") != "shard"]
        _write_jsonl(layout.failures, prior + clip_failures)
    cand = pq.read_table(layout.candidates).to_pandas()
    reasons: dict[str, int] = {}
    for r in cand.loc[~cand["accepted"].astype(bool), "reason"] if len(cand) else []:
        key = r.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    totals = {
        "clips": n_rows, "planned": len(plan), "shards": n_shards,
        "videos": len(src.videos), "source_failures": len([f for f in failures if f.get("stage") == "source"]),
        "candidates": int(len(cand)), "accepted": int(cand["accepted"].astype(bool).sum()) if len(cand) else 0,
        "rejected_by_reason": dict(sorted(reasons.items())), "clip_failures": len(clip_failures),
        **weights.as_dict(), "index": _index_summary(gdir), **size_summary(shard_stats, n_rows),
        "devc_export_bytes_per_clip": _export_estimate(cfg) if cfg.flow != "none" else None,
        "timings": {"wall_s": round(time.perf_counter() - t0, 3)},
    }
    atomic_write_text(layout.stats_json, json.dumps(totals, indent=1, sort_keys=True) + "\n")
    if not opts.keep_work and layout.work.exists():
        shutil.rmtree(layout.work)
    return totals
