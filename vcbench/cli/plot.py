"""`vcbench plot`: PNG figures of the recorded runs (bars, quality vs speed, per-frame curves, strips)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcbench.atomic import check_writable
from vcbench.cli.leaderboard import recorded_runs
from vcbench.errors import InputError, VcbenchError

if TYPE_CHECKING:  # pragma: no cover
    from vcbench.reports.db import ResultsDB, RunRecord


def add_source_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `vcbench plot` and `vcbench report`."""
    p.add_argument("--dataset", default=None, metavar="NAME", help="only this benchmark set")
    p.add_argument("--protocol", default=None, metavar="P", help="only this protocol, e.g. vcbench-v1/dis")
    p.add_argument("--db", type=Path, default=None, metavar="PATH",
                   help="results database (default: the user data folder, or $VCBENCH_DB)")
    p.add_argument("--frames", "--frames-dir", dest="frames", action="append", default=None, metavar="DIR|MODEL=DIR",
                   help="frames saved by `vcbench evaluate --save-frames`: a root holding one folder per model "
                        "(DIR/<model>/<clip>/%%05d.png), or MODEL=DIR for one model's folder (DIR/<clip>/...); "
                        "repeat for several. Enables the frame strips")
    p.add_argument("--gt", type=Path, default=None, metavar="DIR",
                   help="GT clips for the frame strips (one folder or video per clip); default: the benchmark "
                        "set named by the runs, when it is available offline")
    p.add_argument("--resamples", type=int, default=10_000, metavar="N", help="bootstrap resamples (default 10000)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


FRAMES_HINT = ("vcbench: hint: no frame strips without saved frames: run `vcbench evaluate ... --save-frames DIR` "
               "for each model, then `vcbench plot --frames DIR`")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="write PNG figures: per-metric bars, quality vs speed, per-frame curves, frame strips",
        description="Per-metric bar charts with 95% intervals, quality versus frames per second, per-frame "
                    "flicker/warp-error curves for each clip (a line per model) and, with --frames, a strip of the "
                    "same frames from GT and every model. One set per benchmark set and protocol.",
    )
    add_source_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder for the PNG files")
    p.set_defaults(func=run)


def gt_clips_for(args: argparse.Namespace, datasets: set[str]) -> dict[str, Any]:
    """GT clips for the strips: --gt if given, else the named benchmark set if it loads offline."""
    if args.frames is None or args.gt is not None:
        return {}
    clips: dict[str, Any] = {}
    for name in sorted(datasets):
        try:
            from vcbench.benchmarks import load_benchmark  # lazy: CLI start-up (every command module loads)

            bench = load_benchmark(name)
        except (VcbenchError, ImportError) as exc:
            logging.getLogger(__name__).warning("no GT frames for %s's strips (%s); pass --gt DIR", name, exc)
            continue
        clips.update({c.name: c for c in bench.clips})
    return clips


def check_args(args: argparse.Namespace) -> tuple[ResultsDB, list[RunRecord]]:
    """Check `plot`'s and `report`'s arguments before any work; (database, selected runs)."""
    from vcbench.reports.plots import FrameSources  # lazy: CLI start-up (every command module loads)

    sources = FrameSources.parse(args.frames)
    for folder in list(sources.roots) + [d for _, d in sources.models]:
        if not folder.is_dir():
            raise InputError("saved-frames folder not found", path=folder,
                             hint="pass the DIR given to `vcbench evaluate --save-frames DIR` (or MODEL=DIR)")
    args.frames = sources if sources else None
    if args.gt is not None and not args.gt.is_dir():
        raise InputError("GT folder not found", path=args.gt, hint="pass a folder with one sub-folder or video per clip")
    db, runs = recorded_runs(args)
    check_writable(args.out, folder=True)
    return db, runs


def run(args: argparse.Namespace) -> int:
    from vcbench.reports.plots import make_plots  # lazy: CLI start-up (every command module loads)

    db, runs = check_args(args)
    gt = gt_clips_for(args, {r.dataset for r in runs})
    files = make_plots(db, args.out, dataset=args.dataset, protocol=args.protocol, frames=args.frames,
                       gt_root=args.gt, gt_clips=gt, n_resamples=args.resamples)
    if not args.quiet:
        for f in files:
            print(f.path)
        print(f"vcbench: wrote {len(files)} figure(s) to {args.out}", file=sys.stderr)
        if args.frames is None:
            print(FRAMES_HINT, file=sys.stderr)
    return 0
