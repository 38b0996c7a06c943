"""`vcbench compare A B`: is A's gain over B real or noise? Paired tests per metric over shared clips."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vcbench.cli.leaderboard import open_existing_db
from vcbench.cli.table import format_table
from vcbench.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="paired test per metric between two models (or run ids) over the clips both scored",
        description="For each metric: mean of A, mean of B, A-B with its 95% paired-bootstrap interval, the "
                    "Wilcoxon signed-rank p-value, the number of shared clips, and which is better. Colourfulness "
                    "compares |log(pred/GT)| per clip. Runs must share the benchmark set and protocol.",
    )
    p.add_argument("a", metavar="A", help="model name (its latest run) or run id")
    p.add_argument("b", metavar="B", help="model name (its latest run) or run id")
    p.add_argument("--dataset", default=None, metavar="NAME", help="benchmark set (needed when a model has several)")
    p.add_argument("--protocol", default=None, metavar="P", help="protocol (needed when a model has several)")
    p.add_argument("--db", type=Path, default=None, metavar="PATH", help="results database (default: user data folder)")
    p.add_argument("--metrics", default=None, metavar="LIST", help="comma-separated metrics (default: all shared)")
    p.add_argument("--resamples", type=int, default=10_000, metavar="N", help="bootstrap resamples (default 10000)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _group(run: Any) -> tuple[str, str, str]:
    return (run.dataset, run.protocol, run.reference_mode)


def _candidates(db: Any, token: str, dataset: str | None, protocol: str | None) -> list[Any]:
    """Runs `token` may mean: the run with that id (if numeric and present), else that model's runs."""
    if token.isdigit():
        run = db.get(int(token), with_frames=False)
        if run is not None:
            return [run]
    return db.runs(dataset=dataset, protocol=protocol, model=token)


def resolve_pair(db: Any, a: str, b: str, dataset: str | None, protocol: str | None) -> tuple[Any, Any]:
    """Pick the two runs to compare: same dataset/protocol/reference mode, latest of each model."""
    ca, cb = _candidates(db, a, dataset, protocol), _candidates(db, b, dataset, protocol)
    for token, cands in ((a, ca), (b, cb)):
        if not cands:
            where = " on " + " / ".join(x for x in (dataset, protocol) if x) if (dataset or protocol) else ""
            raise InputError(f"no recorded run of {token!r}{where} in {db.path}",
                             hint="give a model name or run id listed by `vcbench leaderboard --format csv`")
    shared = sorted({_group(r) for r in ca} & {_group(r) for r in cb})
    if not shared:
        ga = ", ".join(sorted({f"{d} ({p})" for d, p, _ in map(_group, ca)}))
        gb = ", ".join(sorted({f"{d} ({p})" for d, p, _ in map(_group, cb)}))
        raise InputError(f"{a!r} and {b!r} have no benchmark set and protocol in common ({a}: {ga}; {b}: {gb})",
                         hint="evaluate both under the same dataset and protocol")
    if len(shared) > 1:
        opts = "; ".join(f"--dataset {d} --protocol {p}" + (f" (reference {r})" if r else "") for d, p, r in shared)
        raise InputError(f"{a!r} and {b!r} were both evaluated under several settings: {opts}",
                         hint="choose one with --dataset and --protocol")
    group = shared[0]

    def latest(cands: list[Any]) -> Any:
        return max((r for r in cands if _group(r) == group), key=lambda r: (r.created, r.id or 0))

    return latest(ca), latest(cb)


def _f(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"


def run(args: argparse.Namespace) -> int:
    from vcbench.reports.stats import compare_runs  # lazy: CLI start-up (every command module loads)

    db = open_existing_db(args.db)
    ra, rb = resolve_pair(db, args.a, args.b, args.dataset, args.protocol)
    if ra.id == rb.id:
        raise InputError(f"A and B are the same run (id {ra.id})", hint="compare two different models or runs")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    results = compare_runs(ra, rb, metrics, n_resamples=args.resamples)
    if args.json:
        out = {"a": {"model": ra.model, "run_id": ra.id}, "b": {"model": rb.model, "run_id": rb.id},
               "dataset": ra.dataset, "protocol": ra.protocol, "reference_mode": ra.reference_mode,
               "level": 0.95, "results": [r.as_dict() for r in results]}
        sys.stdout.write(json.dumps(out, indent=2, allow_nan=False) + "\n")
        return 0
    print(f"A = {ra.model} (run {ra.id})   B = {rb.model} (run {rb.id})   "
          f"{ra.dataset}, protocol {ra.protocol}, reference {ra.reference_mode}")
    head = ("metric", "mean A", "mean B", "A-B", "95% CI of A-B", "p (Wilcoxon)", "clips", "better")
    rows = []
    for r in results:
        ci = f"[{_f(r.lo)}, {_f(r.hi)}]" if r.lo is not None else "n/a"
        better = "n/a" if r.better is None else r.better if r.better == "tie" else \
            f"{r.better}{' (significant)' if r.significant else ' (not significant)' if r.n else ''}"
        rows.append((r.quantity, _f(r.mean_a), _f(r.mean_b), _f(r.diff), ci,
                     "n/a" if r.p_value is None else f"{r.p_value:.3g}", str(r.n), better + (f"  [{r.note}]" if r.note else "")))
    print(format_table(head, rows))
    return 0
