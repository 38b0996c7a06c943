"""The plan: which output clips a build makes (real clips, their augmented variants, pseudo-video
from stills), in order, with their shard; written once to plan.json and never re-drawn on a resume.
"""

from __future__ import annotations

from pathlib import Path

from vcbench.errors import InputError
from vcbench.stills import list_stills
from vcbench.trainset.augment import rng_for
from vcbench.trainset.config import BuildConfig
from vcbench.trainset.labels import clip_label
from vcbench.trainset.layout import BuildLayout
from vcbench.trainset.sources.base import SourceVideo


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


def attach_clip_labels(cfg: BuildConfig, plan: list[dict], glabels: dict[str, str] | None,
                       clabels: dict[str, str] | None) -> None:
    """Give every planned clip its class (or None: voted at retrieval) when references are class-filtered.
    A still's gallery label counts only when the stills are the gallery's images."""
    if glabels is None:
        return
    still_labels = glabels if cfg.stills == cfg.gallery else None
    for e in plan:
        e["clip_label"] = clip_label(e, clabels, still_labels, cfg.stills)
