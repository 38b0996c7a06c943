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

Layout of OUT:
  build.json           the settings, the weight files used {file: sha256} and `unverified_weights`
                       (a rerun with other settings or weight files is refused; --allow-unverified-weights
                       alone changes no byte, so it is not compared). plan.json, every shard's stats and
                       the manifest carry the build's id too, so a folder whose build.json is lost still
                       refuses other settings
  .vcbench.lock        while a build runs: its pid, host and token (removed at the end)
  failures.jsonl       dead links, undecodable videos, clips that failed a stage (with reasons)
  candidates.parquet   every cut clip with its filter measures and accept/reject reason
  plan.json            the output clips: id, base clip or still, variant, shard
  gallery/             the reference gallery index (when references are on); labels.json with --gallery-labels
  shards/shard-NNNNN/  frames, flow, masks, manifest.parquet;  shards/shard-NNNNN.stats.json
  manifest.parquet     all shards' rows, in plan order
  stats.json           totals
  work/                extraction cache (removed at the end unless keep_work)
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vcbench.atomic import atomic_write_text, write_bytes, write_errors
from vcbench.trainset import shards as shardio
from vcbench.trainset.clips import ClipSpec, extract_clips
from vcbench.trainset.layout import CANDIDATES_JSON, BuildLayout, clip_file
from vcbench.trainset.manifest import canonical_json, concat_manifests, write_manifest
from vcbench.trainset.sources import SourceOptions, SourceVideo, resolve_source
from vcbench.errors import InputError, VcbenchError
from vcbench.labels import read_label_file
from vcbench.stills import list_stills

log = logging.getLogger(__name__)

DEFAULT_CLIPS = {"sample": 24}
FULL_DEFAULT_CLIPS = 70_000
#: 2: flow stored as KITTI 16-bit PNGs (was float16 .npy); a folder of another version is not resumed.
PLAN_VERSION = 2
#: The clip count the stats project the build's size to (DEVC's training set).
PROJECT_CLIPS = 70_000


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines the bytes of a build (and nothing that does not)."""

    source: str
    clips: int
    seed: int = 0
    spec: ClipSpec = field(default_factory=ClipSpec)
    flow: str = "dis"  # estimator name for vcbench.flow, or "none"
    features: str = "weightfree"  # descriptor for vcbench.retrieval, or "none" (no references)
    gallery: str | None = None  # folder of gallery images; None = scikit-image stills
    stills: str | None = None  # folder of stills for pseudo-video; None = scikit-image stills
    pseudo_fraction: float = 0.25
    shard_size: int = 8
    frame_format: str = "jpg"
    input: str | None = None
    urls: str | None = None
    index: str = "auto"  # gallery index: "flat" (exact), "ivf", or "auto" (IVF above 200k images)
    nlist: int | None = None  # IVF lists (default ~4 sqrt(N))
    nprobe: int | None = None  # IVF lists probed per query (default nlist // 8)
    gallery_labels: str | None = None  # CSV/TSV gallery image -> class: references kept to the clip's class
    clip_labels: str | None = None  # CSV/TSV clip or video -> class (else the still's label, else voted)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["plan_version"] = PLAN_VERSION
        # Label files change the references: their content, not only their path, is the build's.
        d["label_files_sha256"] = {k: shardio.sha256_bytes(Path(v).read_bytes())
                                   for k, v in (("gallery_labels", self.gallery_labels), ("clip_labels", self.clip_labels))
                                   if v and Path(v).is_file()}
        return d


@dataclass(frozen=True)
class RunOptions:
    """How a build runs (does not change its output)."""

    executor: str = "local"
    address: str | None = None
    workers: int | None = None
    num_gpus_per_task: float = 1.0
    quiet: bool = False
    keep_work: bool = False
    min_interval_s: float = 1.0
    retries: int = 5
    #: Use weight files whose sha256 contradicts the registry (the build is then marked unverified).
    #: Not part of the build's identity: the same files give the same bytes with or without it.
    allow_unverified: bool = False
    #: Where descriptors (and build-pairs' index) run: None = CUDA when there is one. Not part of
    #: the identity; the CPU guarantees byte-identical output, a GPU may differ in the last bits.
    device: str | None = None


# ---------------------------------------------------------------------------------------- weights
@dataclass(frozen=True)
class WeightsRecord:
    """The weight files a build uses, {file name: sha256}, and whether any contradicts the registry."""

    files: tuple[tuple[str, str], ...] = ()
    unverified: bool = False

    def as_dict(self) -> dict:
        return {"weights": dict(self.files), "unverified_weights": self.unverified}


def resolve_build_weights(cfg: BuildConfig, *, allow_unverified: bool = False, quiet: bool = True) -> WeightsRecord:
    """Find (and hash-check) every weight file the build's flow and descriptors need, without
    building a network: run before any source is fetched or video decoded, so missing or bad
    weights fail in a second with the resolver's one-line WeightsError."""
    from vcbench.trainset.stages import stage_weight_names
    from vcbench.weights import resolve

    resolved = [resolve(name, allow_unverified=allow_unverified, quiet=quiet) for name in stage_weight_names(cfg)]
    return WeightsRecord(tuple(sorted((r.filename, r.sha256) for r in resolved)),
                         any(not r.verified for r in resolved))


# ------------------------------------------------------------------------------------ extraction
@dataclass(frozen=True)
class ExtractTask:
    out_root: str
    video: SourceVideo
    spec: ClipSpec
    owner: str | None = None  # token of the build's lock; the result is committed only while it holds


def run_extract(task: ExtractTask) -> dict:
    """Cut one video into candidate clips; cache the accepted ones (raw .npy) and every verdict."""
    from vcbench.executors import single_threaded
    from vcbench.lock import PrivateDir, check_owner

    final = BuildLayout(task.out_root).extract_dir(task.video.video_id)
    work = PrivateDir(final.parent, final.name)
    tmp = work.path
    rows, error = [], None
    t0 = time.perf_counter()
    try:
        try:
            with single_threaded():
                for cand in extract_clips(task.video, task.spec):
                    row = {"clip_id": cand.clip_id, "video_id": task.video.video_id, "shot": cand.shot,
                           "start_frame": cand.start, "end_frame": cand.end, "accepted": cand.accepted,
                           "reason": cand.reason, **cand.measures}
                    if cand.accepted:
                        npy = tmp / clip_file(cand.clip_id)
                        with write_errors(npy, size=cand.frames.nbytes + 128):  # + the .npy header
                            np.save(npy, cand.frames, allow_pickle=False)
                    rows.append(row)
        except InputError as exc:  # an undecodable video is logged and skipped, not fatal
            error = str(exc)
        write_bytes(tmp / CANDIDATES_JSON, (json.dumps({"video_id": task.video.video_id, "error": error,
                                                          "rows": rows}, sort_keys=True) + "\n").encode())
        check_owner(task.out_root, task.owner, f"extraction of {task.video.video_id}")
        if not work.rename_to(final):  # another writer of this build finished it first: the same bytes
            work.discard()
    except BaseException:
        work.discard()
        raise
    work.release()
    return {"video_id": task.video.video_id, "n": len(rows), "seconds": time.perf_counter() - t0}


def check_retrieval_options(cfg: BuildConfig) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """Validate index and label options before any work; returns the parsed (gallery, clip) labels,
    with every gallery image checked to have a class."""
    from vcbench.trainset.labels import gallery_labels

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


def attach_clip_labels(cfg: BuildConfig, plan: list[dict], glabels: dict[str, str] | None,
                       clabels: dict[str, str] | None) -> None:
    """Give every planned clip its class (or None: voted at retrieval) when references are class-filtered.
    A still's gallery label counts only when the stills are the gallery's images."""
    from vcbench.trainset.labels import clip_label

    if glabels is None:
        return
    still_labels = glabels if cfg.stills == cfg.gallery else None
    for e in plan:
        e["clip_label"] = clip_label(e, clabels, still_labels, cfg.stills)


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
    import torch  # noqa: F401  (loaded before single_threaded, so its thread count is pinned too)

    from vcbench.trainset.stages import build_clip_stages
    from vcbench.executors import single_threaded

    out_root = Path(task.out_root)
    cfg = task.config
    timings = {"load": 0.0, "augment": 0.0, "references": 0.0, "flow": 0.0, "write": 0.0}
    t_start = time.perf_counter()
    writer = shardio.ShardWriter(out_root, task.index, task.owner)
    rows, failures = [], []
    try:
        with single_threaded():
            stages = build_clip_stages(cfg, out_root, allow_unverified=task.allow_unverified)
            used = stages.weights_used()
            if used != dict(task.weights.files):  # e.g. a Ray worker whose weights cache holds other files
                from vcbench.errors import WeightsError

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


# -------------------------------------------------------------------------------------------- plan
def _summarise_failures(failures: list[dict], limit: int = 3) -> str:
    """'N failures: item (reason); ...' on one line, for an error message."""
    if not failures:
        return "no failures were recorded"
    parts = [f"{f.get('item', '?')} ({' '.join(str(f.get('reason', '')).split())[:160]})" for f in failures[:limit]]
    more = f"; and {len(failures) - limit} more" if len(failures) > limit else ""
    return f"{len(failures)} failure{'s' if len(failures) != 1 else ''}: " + "; ".join(parts) + more


def no_clips_error(cfg: BuildConfig, n_videos: int, n_candidates: int, failures: list[dict],
                   out: Path | None = None) -> InputError:
    """The one-line error for a source that gave nothing to build from. Pseudo-video from stills is
    never a silent substitute: a full-size build of stills alone writes GBs nobody asked for."""
    what = (f"source {cfg.source!r} produced no videos" if n_videos == 0 else
            f"source {cfg.source!r} gave {n_videos} video(s) but none of their {n_candidates} cut clips passed the filters")
    layout = BuildLayout(out) if out is not None else None
    where = f"; details in {layout.failures}" + ("" if n_videos == 0 else f" and {layout.candidates}") \
        if layout is not None else ""
    return InputError(f"{what} ({_summarise_failures(failures)}){where}",
                      hint="fix the source (--input/--urls, network), add videos or loosen the filters; "
                           "--pseudo-fraction 1 builds from still images only")


def make_plan(cfg: BuildConfig, videos: list[SourceVideo], candidates: list[dict], *,
              failures: list[dict] | None = None, out: Path | None = None) -> list[dict]:
    """The output clips, in order: real clips (variant 0 = as cut, then augmented variants), then
    pseudo-videos from stills. Base clips are visited in a seeded shuffle so that a small `--clips`
    samples every video rather than the first ones. Raises `no_clips_error` when video clips are
    wanted (`pseudo_fraction` < 1) but the source gave none."""
    from vcbench.trainset.augment import rng_for

    by_id = {v.video_id: v for v in videos}
    bases = [c for c in candidates if c["accepted"]]
    stills = list_stills(Path(cfg.stills) if cfg.stills else None) if cfg.pseudo_fraction > 0 else []
    n_pseudo = int(round(cfg.clips * cfg.pseudo_fraction)) if stills else 0
    n_video = cfg.clips - n_pseudo
    if not bases and cfg.pseudo_fraction < 1.0:
        raise no_clips_error(cfg, len(videos), len(candidates), failures or [], out)
    order = rng_for(cfg.seed, "plan:bases").permutation(len(bases)) if bases else []
    plan: list[dict] = []
    for j in range(n_video):
        base = bases[int(order[j % len(bases)])]
        variant = j // len(bases)
        video = by_id[base["video_id"]]
        plan.append({"clip_id": f"{base['clip_id']}_v{variant:03d}", "kind": "video", "variant": variant,
                     "base_clip": base["clip_id"], "video_id": base["video_id"], "source": video.source,
                     "licence": video.licence, "origin": video.origin, "shot": base["shot"],
                     "start_frame": base["start_frame"], "end_frame": base["end_frame"],
                     "measures": {k: base[k] for k in ("motion", "chroma", "luma")}})
    for j in range(n_pseudo):
        still = stills[j % len(stills)]
        variant = j // len(stills)
        origin = still.origin
        licence = "scikit-image data (see skimage.data docs for each image's licence)" if origin.startswith("skimage:") \
            else "as the image collection's licence (user-provided)"
        plan.append({"clip_id": f"still-{still.still_id}_v{variant:03d}", "kind": "pseudo", "variant": variant,
                     "base_clip": "", "video_id": still.still_id, "source": "stills", "licence": licence,
                     "origin": origin, "shot": -1, "start_frame": -1, "end_frame": -1, "measures": {}})
    for i, e in enumerate(plan):
        e["shard"] = i // cfg.shard_size
    return plan


# --------------------------------------------------------------------------------------- the build
def _progress(total: int, unit: str, desc: str, quiet: bool, initial: int = 0):
    """tqdm bar showing items/s and the ETA; silent with --quiet."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=unit, desc=desc, disable=quiet, dynamic_ncols=True, smoothing=0.1)


def _identity(record: dict) -> str:
    """What makes two builds the same dataset: the settings and the weight files' hashes. Whether
    unverified weights were allowed does not change a byte, so it is recorded but not compared."""
    return canonical_json({k: v for k, v in record.items() if k != "unverified_weights"})


def build_id(record: dict) -> str:
    """A short name of a build's identity (`_identity`), stored in plan.json, shard stats and the
    DEVC export, so a folder can be matched to its settings even without its build.json."""
    return shardio.sha256_bytes(_identity(record).encode())[:16]


def planned_build_id(cfg: BuildConfig, opts: RunOptions = RunOptions()) -> str:
    """The id `build_dataset(cfg)` will record (its weight files resolved and hashed, nothing built)."""
    weights = resolve_build_weights(cfg, allow_unverified=opts.allow_unverified, quiet=True)
    return build_id(_build_record(cfg, weights))


def _read_json_dict(path: Path) -> dict | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _recorded_build_ids(out: Path) -> tuple[dict[str, str | None], bool]:
    """The build ids the folder's records carry ({record: id or None}), and whether it holds any
    build output at all (plan, candidates, shards, manifest or extraction cache)."""
    from vcbench.trainset.manifest import read_build_metadata

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


def _check_config(out: Path, cfg: BuildConfig, weights: WeightsRecord) -> None:
    """Refuse to resume a folder that holds another build. build.json says which; when it is missing
    or unreadable, the build ids in plan.json, the shard stats and the manifest must all be this
    build's, and a folder that holds output with no id at all is refused too (never relabelled)."""
    path = BuildLayout(out).build_json
    want = _build_record(cfg, weights)
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
    settings = (lambda r: _identity({k: v for k, v in r.items() if k != "weights"}))
    if settings(have) != settings(want):
        raise InputError("this folder holds a build made with other settings", path=out,
                         hint="rerun with the same options to resume, or choose another --out")
    if have.get("weights", want["weights"]) != want["weights"]:
        raise InputError(f"this folder holds a build made with other weight files ({have['weights']}; now "
                         f"{want['weights']})", path=out,
                         hint="put the original weight files back to resume, or choose another --out")


def _build_record(cfg: BuildConfig, weights: WeightsRecord) -> dict:
    """build.json: the settings, plus the weights used and whether any was unverified."""
    return {**cfg.as_dict(), **weights.as_dict()}


def _write_config(out: Path, cfg: BuildConfig, weights: WeightsRecord) -> None:
    atomic_write_text(BuildLayout(out).build_json, json.dumps(_build_record(cfg, weights), indent=1, sort_keys=True) + "\n")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def _index_summary(gdir: Path | None) -> dict | None:
    """The gallery index actually built (kind "auto" resolved), for stats.json."""
    if gdir is None:
        return None
    from vcbench.retrieval.index import META_FILE

    meta = json.loads((gdir / META_FILE).read_text())
    return {k: meta.get(k) for k in ("kind", "nlist", "nprobe", "count", "descriptor")}


def build_dataset(cfg: BuildConfig, out: Path, opts: RunOptions = RunOptions()) -> dict:
    """Run (or resume) a build into `out`; returns the totals written to `out/stats.json`."""
    from vcbench.trainset.stages import check_stage_names
    from vcbench.lock import FolderLock

    if cfg.clips < 1:
        raise InputError(f"--clips must be at least 1 (got {cfg.clips})")
    if cfg.frame_format not in shardio.FRAME_FORMATS:
        raise InputError(f"unknown frame format {cfg.frame_format!r}", hint=f"choose one of {', '.join(shardio.FRAME_FORMATS)}")
    out = Path(out)
    check_stage_names(cfg)
    glabels, clabels = check_retrieval_options(cfg)
    weights = resolve_build_weights(cfg, allow_unverified=opts.allow_unverified, quiet=opts.quiet)
    with FolderLock(out, "build") as lock:
        return _build_locked(cfg, out, opts, weights, glabels, clabels, lock.token)


def _clean_leftovers(out: Path) -> None:
    """What writers of an interrupted run left (this run holds the lock, so the main process's own
    temporary files are all stale; workers' folders are removed only when their writer is dead)."""
    from vcbench.lock import sweep_atomic_leftovers, sweep_private_dirs

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


def _wait_for_orphans(out: Path, timeout_s: float = 60.0) -> None:
    """Writers of a dead run that were still alive when this one started (a Ray task of a killed
    driver that its cluster has not stopped yet) cannot commit, and remove their folder when they
    find out; wait for that so the output holds nothing of theirs, then sweep once more."""
    from vcbench.lock import live_private_dirs, sweep_private_dirs

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
    from vcbench.trainset.export_devc import export_bytes_per_clip

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
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vcbench.atomic import atomic_path
    from vcbench.executors import make_executor

    layout = BuildLayout(out)
    _check_config(out, cfg, weights)
    bid = build_id(_build_record(cfg, weights))
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
    _write_config(out, cfg, weights)
    _clean_leftovers(out)
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
            with _progress(len(todo), "video", "extract", opts.quiet) as bar:
                for _ in executor.map(run_extract, todo, describe=lambda t: f"extracting video {t.video.video_id}"):
                    bar.update(1)
        if plan is None:
            candidates = []
            for v in src.videos:
                rec = json.loads(layout.candidates_json(v.video_id).read_text())
                if rec["error"]:
                    failures.append({"item": v.video_id, "url": v.origin, "reason": rec["error"], "stage": "extract"})
                for r in rec["rows"]:
                    candidates.append(dict(r, source=v.source, licence=v.licence, origin=v.origin))
            cols = ["clip_id", "video_id", "shot", "start_frame", "end_frame", "accepted", "reason", "motion", "chroma",
                    "luma", "source", "licence", "origin"]
            table = pa.table({c: [r[c] for r in candidates] for c in cols}) if candidates else \
                pa.table({c: pa.array([], pa.string()) for c in cols})
            with atomic_path(layout.candidates, suffix=".parquet") as tmp:
                pq.write_table(table, tmp, compression="zstd")
            _write_jsonl(layout.failures, failures)
            plan = make_plan(cfg, src.videos, candidates, failures=failures, out=out)
            attach_clip_labels(cfg, plan, glabels, clabels)
            atomic_write_text(plan_path, json.dumps({"build_id": bid, "clips": plan}, sort_keys=True) + "\n")

        import torch  # noqa: F401  (descriptors run on torch; loaded first so single_threaded pins it)

        from vcbench.trainset.stages import prepare_gallery, stage_needs_gpu
        from vcbench.executors import single_threaded

        with single_threaded():  # descriptors in a fixed summation order: same index bytes on any machine
            gdir = prepare_gallery(cfg, out, quiet=opts.quiet, allow_unverified=opts.allow_unverified)
        n_shards = (len(plan) + cfg.shard_size - 1) // cfg.shard_size
        pending = [i for i in range(n_shards) if not shardio.shard_complete(out, i)]
        tasks = [ShardTask(str(out), i, tuple(e for e in plan[i * cfg.shard_size:(i + 1) * cfg.shard_size]), cfg,
                           weights, opts.allow_unverified, token, bid)
                 for i in pending]
        done_clips = len(plan) - sum(len(t.entries) for t in tasks)
        with _progress(len(plan), "clip", "build", opts.quiet, initial=done_clips) as bar:
            for stats in executor.map(run_shard, tasks, gpu=stage_needs_gpu(cfg),
                                      describe=lambda t: f"building shard {t.index}"):
                bar.update(stats["count"])
    finally:
        executor.close()
    _wait_for_orphans(out)
    incomplete = [i for i in range(n_shards) if not shardio.shard_complete(out, i)]
    if incomplete:  # never report a build done over a shard that is not all there
        raise VcbenchError(f"{len(incomplete)} shard(s) are not complete after the build (first: shard {incomplete[0]})",
                           path=out, hint="rerun the same command to resume")

    n_rows = concat_manifests([layout.shard_manifest(i) for i in range(n_shards)], layout.manifest,
                              build=_build_record(cfg, weights))
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
