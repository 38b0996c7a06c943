"""`vcbench build-dataset`: raw videos -> DEVC-style training clips with references and flow.

A thin wrapper over `vcbench.trainset.run.build_dataset`. Rerunning the same command resumes an
interrupted build (complete shards are kept, the rest redone); the result is byte-identical to an
uninterrupted build on the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vcbench.errors import InputError

SOURCES = ("sample", "videvo", "hollywood2", "hollywood3d", "local")
FLOWS = ("dis", "farneback", "raft", "flownet2", "none")
FEATURES = ("weightfree", "weightfree_gray", "vgg19", "none")


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW such as 216x384, got {text!r}") from None
    if h < 8 or w < 8:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 8x8)")
    return h, w


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build-dataset",
        help="build a DEVC-style training set (clips, references, flow), resumable, local or on Ray",
        description="Cut source videos into clips (shot-aware, filtered), augment them up to --clips, retrieve "
                    "top-5 gallery references, precompute forward/backward flow with occlusion masks, and write "
                    "shards with a Parquet manifest. Rerun the same command to resume.",
    )
    p.add_argument("--source", required=True, choices=SOURCES)
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="build folder (created; resumed if it exists)")
    p.add_argument("--clips", type=int, default=None, metavar="N",
                   help="output clips (default 70000; 24 for --source sample)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of every random choice (default 0)")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--address", default=None, help="Ray cluster address for --executor ray (default: start a local one)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: all cores); with ray and no --address, the local CPU count")
    p.add_argument("--gpus-per-task", type=float, default=1.0, metavar="G",
                   help="GPUs a flow/descriptor task asks from a Ray cluster that has GPUs (default 1; fractions allowed)")
    p.add_argument("--flow", choices=FLOWS, default="dis", help="flow estimator (default dis; none = no flow)")
    p.add_argument("--features", choices=FEATURES, default="weightfree",
                   help="reference descriptors (weightfree: offline default; vgg19 needs its weights; none = no references)")
    p.add_argument("--gallery", type=Path, default=None, metavar="DIR",
                   help="reference gallery images (e.g. ImageNet train; default: scikit-image stills)")
    p.add_argument("--gallery-labels", type=Path, default=None, metavar="FILE",
                   help="CSV/TSV of gallery image (id, file name or path) and class: references are kept to the "
                        "clip's class, as DEVC's training set")
    p.add_argument("--clip-labels", type=Path, default=None, metavar="FILE",
                   help="CSV/TSV of clip or source video id and class (needs --gallery-labels; default: the still's "
                        "class for pseudo-video, else voted by the nearest gallery images)")
    p.add_argument("--index", choices=("auto", "flat", "ivf"), default="auto",
                   help="gallery index: flat (exact) or ivf (approximate); auto = flat up to 200k images, else ivf")
    p.add_argument("--nlist", type=int, default=None, metavar="N", help="IVF lists (default about 4 sqrt(images))")
    p.add_argument("--nprobe", type=int, default=None, metavar="N", help="IVF lists probed per query (default nlist/8)")
    p.add_argument("--stills", type=Path, default=None, metavar="DIR",
                   help="still images for pseudo-video (e.g. ImageNet train; default: scikit-image stills)")
    p.add_argument("--pseudo-fraction", type=float, default=0.25, metavar="F",
                   help="share of output clips made from stills (default 0.25; 0 = none)")
    p.add_argument("--clip-length", type=int, default=25, metavar="T", help="frames per clip (default 25, as DEVC)")
    p.add_argument("--size", type=_size, default=(216, 384), metavar="HxW",
                   help="clip size, resize-to-fill then centre crop (default 216x384, as DEVC)")
    p.add_argument("--shard-size", type=int, default=None, metavar="N", help="clips per shard (default 100; 8 for sample)")
    p.add_argument("--frame-format", choices=("jpg", "png"), default="jpg",
                   help="frame files in shards (jpg: quality 95, 4:4:4; png: lossless)")
    p.add_argument("--input", type=Path, default=None, metavar="DIR",
                   help="local videos (--source local), downloaded archives (hollywood*), or files named <id>.* (videvo)")
    p.add_argument("--urls", type=Path, default=None, metavar="CSV",
                   help="clip list for videvo (url or id, licence, origin) or archive URLs for hollywood3d")
    p.add_argument("--min-interval", type=float, default=1.0, metavar="S",
                   help="seconds between two requests to one host (default 1)")
    p.add_argument("--allow-unverified-weights", action="store_true",
                   help="use weight files whose sha256 differs from the registry's; the build records every "
                        "file's sha256 and is marked unverified (build.json, shard stats, manifest)")
    p.add_argument("--export-devc", type=Path, default=None, metavar="DIR",
                   help="also write the folder layout DEVC's training loader reads (a folder holding another "
                        "build's export is refused; an interrupted export of this build resumes)")
    p.add_argument("--keep-work", action="store_true", help="keep the extraction cache (work/) after the build")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the totals as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vcbench.trainset.clips import ClipSpec  # lazy: CLI start-up
    from vcbench.trainset.config import DEFAULT_CLIPS, FULL_DEFAULT_CLIPS, BuildConfig, RunOptions  # lazy: CLI start-up
    from vcbench.trainset.run import build_dataset  # lazy: CLI start-up

    clips = args.clips if args.clips is not None else DEFAULT_CLIPS.get(args.source, FULL_DEFAULT_CLIPS)
    shard_size = args.shard_size or (8 if args.source == "sample" else 100)
    if args.clip_length < 2:
        raise InputError(f"--clip-length must be at least 2 (got {args.clip_length})")
    if shard_size < 1:
        raise InputError(f"--shard-size must be at least 1 (got {shard_size})")
    if not 0.0 <= args.pseudo_fraction <= 1.0:
        raise InputError(f"--pseudo-fraction must lie in [0, 1] (got {args.pseudo_fraction})")
    h, w = args.size
    resolve = (lambda p: str(p.resolve()) if p is not None else None)
    cfg = BuildConfig(source=args.source, clips=clips, seed=args.seed,
                      spec=ClipSpec(length=args.clip_length, height=h, width=w), flow=args.flow,
                      features=args.features, gallery=resolve(args.gallery), stills=resolve(args.stills),
                      pseudo_fraction=args.pseudo_fraction, shard_size=shard_size, frame_format=args.frame_format,
                      input=resolve(args.input), urls=resolve(args.urls), index=args.index, nlist=args.nlist,
                      nprobe=args.nprobe, gallery_labels=resolve(args.gallery_labels),
                      clip_labels=resolve(args.clip_labels))
    opts = RunOptions(executor=args.executor, address=args.address, workers=args.workers,
                      num_gpus_per_task=args.gpus_per_task, quiet=args.quiet, keep_work=args.keep_work,
                      min_interval_s=args.min_interval, allow_unverified=args.allow_unverified_weights)
    if args.export_devc is not None:  # a folder of another build's export is refused before the build, not after
        from vcbench.trainset.export import check_export_dest  # lazy: CLI start-up
        from vcbench.trainset.run import planned_build_id  # lazy: CLI start-up

        check_export_dest(args.export_devc, planned_build_id(cfg, opts))
    totals = build_dataset(cfg, args.out, opts)
    if args.export_devc is not None:
        from vcbench.trainset.export_devc import export_devc  # lazy: CLI start-up

        totals["devc_export"] = export_devc(args.out, args.export_devc, quiet=args.quiet)
    if args.json:
        print(json.dumps(totals, indent=1, sort_keys=True))
    else:
        print(f"{totals['clips']} clips in {totals['shards']} shards at {args.out} "
              f"({totals['accepted']} of {totals['candidates']} cut clips kept; "
              f"{totals['source_failures']} source failures, {totals['clip_failures']} clip failures)", file=sys.stdout)
    return 0
