"""`vcbench leaderboard`: rank recorded runs per benchmark set and protocol, and export raw values."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vcbench.atomic import atomic_write_text
from vcbench.cli.common import cite_model
from vcbench.errors import InputError, VcbenchError

if TYPE_CHECKING:  # pragma: no cover
    from vcbench.reports.db import ResultsDB, RunRecord


def open_existing_db(path: Path | None) -> ResultsDB:
    """The results database at `path` (default location if None); a missing file is a user error,
    never silently created by a read-only command."""
    from vcbench.reports.db import ResultsDB, default_db_path  # lazy: CLI start-up (every command module loads)

    db_path = Path(path) if path is not None else default_db_path()
    if not db_path.exists():
        raise InputError("no results database here", path=db_path,
                         hint="run `vcbench evaluate --model NAME --dataset NAME` first, or pass --db")
    return ResultsDB(db_path, readonly=True)  # reports never write: a read-only database still reads


def no_runs_error(db: ResultsDB, dataset: str | None, protocol: str | None) -> VcbenchError:
    """A one-line error listing what the database does hold, so the user can fix the filter."""
    have = sorted({(r.dataset, r.protocol) for r in db.runs()})
    held = ", ".join(f"{d} ({p})" for d, p in have) or "nothing yet"
    what = " and ".join(x for x in (f"dataset {dataset!r}" if dataset else "",
                                    f"protocol {protocol!r}" if protocol else "") if x) or "any dataset"
    return InputError(f"no runs recorded for {what} in {db.path}; it holds: {held}",
                      hint="run `vcbench evaluate` or change --dataset/--protocol")


def recorded_runs(args: argparse.Namespace) -> tuple[ResultsDB, list[RunRecord]]:
    """(database, runs) for a report command's --db, --dataset and --protocol (leaderboard, plot,
    report), after checking --resamples; no matching run is a user error saying what the database holds."""
    if args.resamples < 100:
        raise InputError(f"--resamples {args.resamples} is too few for a 95% interval", hint="use at least 1000")
    db = open_existing_db(args.db)
    runs = db.runs(dataset=args.dataset, protocol=args.protocol)
    if not runs:
        raise no_runs_error(db, args.dataset, args.protocol)
    return db, runs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="rank recorded runs per benchmark set and protocol (md, csv, latex, html, json)",
        description="One table per benchmark set and protocol (flow estimator, reference mode): the latest run "
                    "of each model, every value with its 95% bootstrap interval over clips, the best in bold.",
    )
    p.add_argument("--dataset", default=None, metavar="NAME", help="only this benchmark set")
    p.add_argument("--protocol", default=None, metavar="P", help="only this protocol, e.g. vcbench-v1/dis")
    p.add_argument("--db", type=Path, default=None, metavar="PATH",
                   help="results database (default: the user data folder, or $VCBENCH_DB)")
    p.add_argument("--format", default="md", choices=("md", "csv", "latex", "html", "json"),
                   help="output format (default md)")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--metrics", default=None, metavar="LIST", help="comma-separated metrics to show (default: all)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.add_argument("--export-clips", type=Path, default=None, metavar="FILE.csv|.parquet",
                   help="also write the per-clip values of the ranked runs (long format)")
    p.add_argument("--export-frames", type=Path, default=None, metavar="FILE.csv|.parquet",
                   help="also write the per-frame values of the ranked runs (long format)")
    p.add_argument("--resamples", type=int, default=10_000, metavar="N", help="bootstrap resamples (default 10000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # lazy: CLI start-up (every command module loads)
    from vcbench.reports.leaderboard import build_tables, export_values, latest_runs, render

    for f in (args.export_clips, args.export_frames):
        if f is not None and f.suffix.lower() not in (".csv", ".parquet"):
            raise InputError("export file must end in .csv or .parquet", path=f)
    db, runs = recorded_runs(args)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    if metrics:
        known = sorted({m for r in runs for m in r.metrics})
        unknown = [m for m in metrics if m not in known]
        if unknown:
            raise InputError(f"no recorded run has metric(s) {', '.join(unknown)}; recorded: {', '.join(known)}",
                             hint="fix --metrics")
    tables = build_tables(runs, metrics=metrics, n_resamples=args.resamples, cite=cite_model)
    text = render(tables, "json" if args.json else args.format)
    ranked = latest_runs(runs)
    if args.export_clips is not None:
        n = export_values(db, args.export_clips, "clips", ranked)
        print(f"vcbench: wrote {n} per-clip values to {args.export_clips}", file=sys.stderr)
    if args.export_frames is not None:
        n = export_values(db, args.export_frames, "frames", ranked)
        print(f"vcbench: wrote {n} per-frame values to {args.export_frames}", file=sys.stderr)
    if args.out is not None:
        atomic_write_text(args.out, text)
        print(f"vcbench: wrote {len(tables)} table(s) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
