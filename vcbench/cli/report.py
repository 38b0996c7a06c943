"""`vcbench report --out DIR`: one static HTML page with the tables, figures and per-clip values."""

from __future__ import annotations

import argparse
from pathlib import Path

from vcbench.cli.common import cite_model
from vcbench.cli.plot import add_source_args, check_args, gt_clips_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write an HTML report (tables, figures, per-clip values, run provenance) to DIR/index.html",
        description="A static page, no JavaScript: leaderboard tables per benchmark set and protocol, the figures "
                    "of `vcbench plot` (in DIR/plots/, or inlined with --embed), per-clip values and each run's "
                    "weights, versions and device.",
    )
    add_source_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (index.html, plots/)")
    p.add_argument("--embed", action="store_true", help="inline the figures as data URIs: a single-file page")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vcbench.reports.html import build_report  # lazy: CLI start-up (every command module loads)

    db, runs = check_args(args)
    gt = gt_clips_for(args, {r.dataset for r in runs})
    path = build_report(db, args.out, dataset=args.dataset, protocol=args.protocol, frames=args.frames,
                        gt_root=args.gt, gt_clips=gt, embed=args.embed, n_resamples=args.resamples,
                        cite=cite_model)
    if not args.quiet:
        print(path)
    return 0
