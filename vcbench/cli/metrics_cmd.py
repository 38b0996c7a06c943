"""`vcbench metrics list`: every metric of the protocol, its direction and the weights it needs.

Reads the registry table only (no metric module is imported) and checks weights by looking for the
file in the cache, never downloading or hashing, so it answers at once.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vcbench.cli.table import format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics", help="list the metrics of protocol vcbench-v1",
                       description="Metrics of protocol vcbench-v1: ranking direction, weight files and whether "
                                   "they are in the cache ($TORCH_HOME/hub/checkpoints).")
    msub = p.add_subparsers(dest="metrics_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
    ls = msub.add_parser("list", help="show every metric, its direction and the weights it needs")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=run_list)


def metric_rows() -> list[dict[str, Any]]:
    """One row per metric: name, direction, weights {name: {file, present}}, needs, description."""
    from vcbench.metrics.registry import METRICS  # lazy: CLI start-up (every command module loads)
    from vcbench.weights import cache_path, get_spec  # lazy: CLI start-up

    rows = []
    for info in METRICS.values():
        weights = {}
        for w in info.weights:
            path = cache_path(w)
            weights[w] = {"file": get_spec(w).filename, "present": path.is_file(), "path": str(path)}
        rows.append({"name": info.name, "direction": info.direction.listing, "higher_is_better": info.higher_is_better,
                     "weights": weights, "ready": all(v["present"] for v in weights.values()),
                     "needs": list(info.needs), "description": info.description})
    return rows


def _weights_cell(row: dict[str, Any]) -> str:
    if not row["weights"]:
        return "-"
    return ", ".join(f"{w} ({'present' if v['present'] else 'missing'})" for w, v in row["weights"].items())


def run_list(args: argparse.Namespace) -> int:
    rows = metric_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ("metric", "direction", "weights", "description")
    print(format_table(cols, [(r["name"], r["direction"], _weights_cell(r), r["description"]) for r in rows]))
    missing = sorted({w for r in rows for w, v in r["weights"].items() if not v["present"]})
    if missing:
        print(f"\nmissing weights: fetch with `vcbench weights download NAME` ({', '.join(missing)})")
    return 0
