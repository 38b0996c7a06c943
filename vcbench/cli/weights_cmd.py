"""`vcbench weights list|download|verify`: see, fetch and check the pretrained weight files.

Files live in the torch hub cache ($TORCH_HOME/hub/checkpoints), so downloads made by torchvision,
lpips or pytorch-fid count, and a machine without network can be fed by copying files there.
"""

from __future__ import annotations

import argparse
import json
import sys

from vcbench.cli.table import format_table
from vcbench.errors import VcbenchError, WeightsError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list, download and verify pretrained weight files",
                       description="Pretrained weights live in $TORCH_HOME/hub/checkpoints under their canonical "
                                   "names; each is checked against the sha256 prefix its name carries.")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    ls = wsub.add_parser("list", help="show every known weight file and whether it is present and verified")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=run_list)

    dl = wsub.add_parser("download", help="download weight files into the cache, checking their hashes")
    dl.add_argument("name", metavar="NAME|all", help="a name from `vcbench weights list`, or all")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    dl.set_defaults(func=run_download)

    vf = wsub.add_parser("verify", help="hash cached weight files and compare with the registry")
    vf.add_argument("name", nargs="?", default=None, metavar="NAME", help="one name (default: every present file)")
    vf.add_argument("--json", action="store_true", help="print JSON instead of a table")
    vf.set_defaults(func=run_verify)


def _rows(names: list[str]) -> list[dict[str, str | None]]:
    from vcbench.weights import get_spec, status  # lazy: CLI start-up (its http.client, ssl)

    rows = []
    for name in names:
        spec = get_spec(name)
        state, path, digest = status(name)
        rows.append({"name": spec.name, "file": spec.filename, "status": state, "path": str(path),
                     "sha256": digest, "url": spec.url})
    return rows


def _print_table(rows: list[dict[str, str | None]]) -> None:
    cols = ("name", "file", "status", "path")
    print(format_table(cols, [[str(r[c]) for c in cols] for r in rows]))


def run_list(args: argparse.Namespace) -> int:
    from vcbench.weights import REGISTRY  # lazy: CLI start-up (its http.client, ssl)

    rows = _rows(sorted(REGISTRY))
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        _print_table(rows)
    return 0


def run_download(args: argparse.Namespace) -> int:
    from vcbench.weights import REGISTRY, get_spec, resolve  # lazy: CLI start-up (its http.client, ssl)

    names = sorted(REGISTRY) if args.name == "all" else [get_spec(args.name).name]
    failures: list[str] = []
    for name in names:
        try:
            r = resolve(name, download=True, quiet=args.quiet)
        except VcbenchError as exc:
            if len(names) == 1:
                raise
            print(f"vcbench: error: {exc}", file=sys.stderr)
            failures.append(name)
            continue
        if not args.quiet:
            print(f"{name}: {r.path} ({'already present' if r.source == 'cache' else 'downloaded'}, "
                  f"sha256 {r.sha256[:16]}...)")
    if failures:
        raise WeightsError(f"{len(failures)} of {len(names)} weight files could not be fetched: {', '.join(failures)}",
                           hint="see the lines above; rerun to resume partial downloads")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from vcbench.weights import REGISTRY, get_spec  # lazy: CLI start-up (its http.client, ssl)

    if args.name:
        rows = _rows([get_spec(args.name).name])
        if rows[0]["status"] == "missing":
            raise WeightsError(f"{rows[0]['file']} is not in the weights cache", path=rows[0]["path"],
                               hint=f"run `vcbench weights download {rows[0]['name']}`")
    else:
        rows = [r for r in _rows(sorted(REGISTRY)) if r["status"] != "missing"]
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        for r in rows:
            digest = r["sha256"] or ""
            print(f"{r['name']}: {r['status']} ({r['path']}, sha256 {digest})")
        if not rows:
            print("no weight files in the cache; see `vcbench weights list`")
    bad = [r for r in rows if r["status"] == "unverified"]
    if bad:
        names = ", ".join(str(r["name"]) for r in bad)
        raise WeightsError(f"sha256 mismatch for {names}",
                           hint="delete the file(s) and run `vcbench weights download NAME` again")
    return 0
