"""The `vcbench` command line: one sub-module per command, each with `add_parser` and `run`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from vcbench import __version__
from vcbench.atomic import DISK_FULL_HINT, disk_full_error, is_disk_full
from vcbench.cli.parser import OneLineParser
from vcbench.errors import VcbenchError

# Each entry is a module in vcbench.cli exposing `register(subparsers)`; the module sets
# `func=` on its parser(s) via set_defaults so `main` can dispatch.
COMMAND_MODULES: tuple[str, ...] = (
    "metrics_cmd",
    "weights_cmd",
    "score",
    "models_cmd",
    "evaluate",
    "datasets_cmd",
    "leaderboard",
    "compare",
    "build_dataset",
    "build_pairs",
    "plot",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(  # its sub-commands' parsers are of the same class: one-line usage errors
        prog="vcbench",
        description="Build DEVC-style training sets and rank video colorization models.",
    )
    parser.add_argument("--version", action="version", version=f"vcbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"vcbench.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.WARNING, format="vcbench: %(message)s")
    try:
        return int(args.func(args) or 0)
    except VcbenchError as exc:
        print(f"vcbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # Last resort for the user's environment (permissions, a file where a folder should be, a full
        # disk) that no module turned into a VcbenchError: one line, no traceback. Programming errors
        # (every other exception type) still propagate with their traceback.
        if is_disk_full(exc):
            msg = (str(disk_full_error(exc.filename, exc=exc)) if exc.filename is not None else
                   f"no space left on device while writing ({exc.strerror or exc}). {DISK_FULL_HINT}.")
        else:
            where = exc.filename if exc.filename is not None else "vcbench"
            msg = f"{where}: {exc.strerror or exc}"
        print(f"vcbench: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vcbench: interrupted; nothing half-written was kept, rerun to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
