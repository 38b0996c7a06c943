"""`vcbench datasets ...`: the benchmark sets (`list`, `download`) and built training sets (`verify`).

`list` shows each named benchmark, whether its data is where vcbench looks, and what to do when it
is not; it never downloads or hashes anything. `download` fetches Lai et al.'s test videos (davis30,
videvo20) from their official address into the data root.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vcbench.cli.table import format_table
from vcbench.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="benchmark sets: list, download; built training sets: verify",
                       description="Benchmark sets by name and where their data is; built training sets.")
    dsub = p.add_subparsers(dest="datasets_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    ls = dsub.add_parser("list", help="show each benchmark set and whether its data is available")
    ls.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                    help="where to look for the licensed sets (default $VCBENCH_DATA_ROOT or the user data folder)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=run_list)

    dl = dsub.add_parser("download", help="download davis30 / videvo20 (Lai et al.'s test.zip, 16 GB) and unpack it")
    dl.add_argument("name", choices=("davis30", "videvo20"), help="benchmark to fetch")
    dl.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                    help="where to put it (default $VCBENCH_DATA_ROOT or the user data folder)")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    dl.set_defaults(func=run_download)

    vf = dsub.add_parser("verify", help="check every checksum of a build-dataset or build-pairs folder; non-zero exit "
                                        "if anything is wrong")
    vf.add_argument("dir", type=Path, metavar="DIR", help="the --out folder of vcbench build-dataset or build-pairs")
    vf.add_argument("--json", action="store_true", help="print the report as JSON")
    vf.set_defaults(func=run_verify)

    ex = dsub.add_parser("export", help="export a finished build for a training program (DEVC's loaders) without rebuilding",
                         description="A build-dataset folder becomes DEVC's --data_root, a build-pairs folder its "
                                     "--data_root_imagenet. Rerun to resume; a folder holding another build's export "
                                     "is refused.")
    ex.add_argument("build", type=Path, metavar="BUILD", help="the --out folder of build-dataset or build-pairs")
    ex.add_argument("out", type=Path, metavar="OUT", help="the export folder (created; resumed if it holds this export)")
    ex.add_argument("--format", choices=("devc",), default="devc", help="layout to write (default devc)")
    ex.add_argument("--copy", action="store_true", help="copy frames and images instead of hard-linking them")
    ex.add_argument("--backward-flow", choices=("full", "zero"), default="full",
                    help="clips: write the real backward flow (full), or link every _backward.flo to one zero file "
                         "(zero: half the flow bytes; DEVC's train.py never reads it)")
    ex.add_argument("--quiet", action="store_true", help="no progress bar")
    ex.add_argument("--json", action="store_true", help="print the export's summary as JSON")
    ex.set_defaults(func=run_export)


def benchmark_rows(data_root: Path | None = None) -> list[dict]:
    from vcbench.benchmarks import BENCHMARKS, benchmark_status  # lazy: CLI start-up (every command module loads)

    rows = []
    for name, info in BENCHMARKS.items():
        available, where = benchmark_status(name, data_root)
        rows.append({"name": name, "kind": info.kind, "available": available, "location": where,
                     "description": info.description, "source": info.source})
    return rows


def run_list(args: argparse.Namespace) -> int:
    rows = benchmark_rows(args.data_root)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    table = [(r["name"], r["kind"], "available" if r["available"] else "missing", r["description"]) for r in rows]
    print(format_table(("dataset", "kind", "status", "description"), table))
    print()
    for r in rows:
        print(f"{r['name']}: {r['location']}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from vcbench.benchmarks import download_benchmark  # lazy: CLI start-up (every command module loads)

    folder = download_benchmark(args.name, args.data_root, quiet=args.quiet)
    print(f"{args.name}: ready at {folder}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from vcbench.trainset.export_devc import export_devc  # lazy: CLI start-up (every command module loads)
    from vcbench.trainset.config import is_pair_build  # lazy: CLI start-up (every command module loads)

    if is_pair_build(args.build):
        if args.backward_flow != "full":
            raise InputError("--backward-flow applies to clip builds; a pair build has no flow", path=args.build)
        from vcbench.trainset.export_pairs import export_pairs  # lazy: CLI start-up (every command module loads)

        res = export_pairs(args.build, args.out, quiet=args.quiet, link=not args.copy)
    else:
        res = export_devc(args.build, args.out, quiet=args.quiet, link=not args.copy, backward_flow=args.backward_flow)
    if args.json:
        print(json.dumps(res, indent=1, sort_keys=True))
    else:
        n, unit = (res["clips"], "clips") if res["kind"] == "clips" else (res["classes"], "classes")
        print(f"{args.out}: {n} {unit} ({res['written']} written now; {res['bytes_written']} bytes written, "
              f"{res['bytes_linked']} linked)")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from vcbench.trainset.verify import verify_build  # lazy: CLI start-up (every command module loads)

    report = verify_build(args.dir)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for kind, items in (("missing", report.missing), ("corrupt", report.corrupt), ("problem", report.problems)):
            for item in items:
                print(f"{kind}: {item}")
        state = "ok" if report.ok else (f"{len(report.missing)} missing, {len(report.corrupt)} corrupt, "
                                        f"{len(report.problems)} other problems")
        print(f"{args.dir}: {report.clips} {report.unit}, {report.files_checked} files checked: {state}")
    return 0 if report.ok else 1
