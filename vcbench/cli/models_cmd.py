"""`vcbench models list`: every registered model (built-ins and `vcbench.models` plug-ins), whether it
can be imported, and the state of each weight file it needs (never downloading anything); then the
post-processing wrappers, used as BASE+WRAPPER (`welsh+dvp`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vcbench.cli.table import format_table
from vcbench.errors import VcbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the colorization models vcbench can evaluate",
                       description="Models are built in or come from installed packages through the "
                                   "`vcbench.models` entry point group.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
    ls = msub.add_parser("list", help="show each model, its origin and its weights status")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=run_list)


def _weights_status(names: list[str]) -> list[dict[str, Any]]:
    from vcbench.weights import status  # lazy: CLI start-up (every command registers this module)

    weights = []
    for w in names:
        try:
            state, path, digest = status(w)
            weights.append({"name": w, "status": state, "path": str(path), "sha256": digest})
        except VcbenchError as exc:  # a model naming a weight file the registry does not know
            weights.append({"name": w, "status": "unknown", "path": None, "sha256": None, "error": str(exc)})
    return weights


def model_rows() -> list[dict[str, Any]]:
    """One plain dict per model: name, origin, available (+ error), description, weights with status."""
    from vcbench.baselines.registry import MODELS, model_info  # lazy: CLI start-up (it imports torch)

    rows = []
    for name in MODELS.names():
        info = model_info(name)
        rows.append({"name": info.name, "kind": "model", "origin": info.origin, "target": info.target,
                     "available": info.available, "error": info.error, "description": info.description,
                     "uses_reference": info.uses_reference, "weights": _weights_status(info.weights)})
    return rows


def wrapper_rows() -> list[dict[str, Any]]:
    """One plain dict per post-processing wrapper (kind "wrapper"), in the shape of `model_rows`."""
    from vcbench.baselines.registry import WRAPPERS  # lazy: CLI start-up (it imports torch)

    rows = []
    for name, spec in WRAPPERS.items():
        row: dict[str, Any] = {"name": name, "kind": "wrapper", "origin": spec.origin, "target": spec.target,
                               "available": True, "error": None, "description": "", "uses_reference": None,
                               "weights": []}
        try:
            cls = WRAPPERS.load(name)
            row["description"] = cls.description
            row["weights"] = _weights_status(list(cls.weights))
        except VcbenchError as exc:
            row["available"], row["error"] = False, str(exc)
        rows.append(row)
    return rows


def _weights_cell(row: dict[str, Any]) -> str:
    if not row["available"]:
        return "-"
    if not row["weights"]:
        return "none needed"
    return ", ".join(f"{w['name']}: {w['status']}" for w in row["weights"])


def run_list(args: argparse.Namespace) -> int:
    rows = model_rows()
    wrappers = wrapper_rows()
    if args.json:
        json.dump(rows + wrappers, sys.stdout, indent=2)
        print()
        return 0
    def cells(r: dict[str, Any], name: str) -> tuple[str, str, str, str]:
        desc = r["description"] if r["available"] else f"UNAVAILABLE: {r['error']}"
        return (name, r["origin"] if r["kind"] == "model" else "wrapper", _weights_cell(r), desc)

    # One table, so wrappers line up under the models' columns; a heading line sets them apart.
    lines = format_table(("model", "origin", "weights", "description"),
                         [cells(r, r["name"]) for r in rows] + [cells(r, f"BASE+{r['name']}") for r in wrappers]).splitlines()
    split = 2 + len(rows)
    heading = "wrappers: post-processes for any model, --model BASE+WRAPPER (e.g. welsh+dvp)"
    print("\n".join(lines[:split] + ["", heading] + lines[split:]))
    return 0
