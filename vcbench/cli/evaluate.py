"""`vcbench evaluate`: run a registered model on a benchmark, score it and record the run.

A thin wrapper over `vcbench.evaluate.evaluate_models`: parse options, resolve the benchmark and the
database, print the metric table of each model (the stored one when an identical run is reused), and
write `--json` atomically only after the run succeeded: one model's result as it always was, several
models' as `{"runs": [...]}` in the order given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcbench.atomic import check_writable
from vcbench.cli.common import check_json_dest, metric_list, write_json_text
from vcbench.cli.score import format_table
from vcbench.errors import InputError
from vcbench.reports.db import ResultsDB

if TYPE_CHECKING:  # pragma: no cover
    from vcbench.evaluate import Evaluation

FLOW_HELP = (
    "GT optical flow for warp_error and flicker: auto (default: flownet2, the field's standard, when its "
    "weights are in the cache, else dis), dis (OpenCV DIS, offline), farneback, raft, flownet2, or a "
    "folder of precomputed flow in Lai's layout. The protocol name records the estimator "
    "(vcbench-v1/flownet2, vcbench-v1/dis, ...); tables never mix them silently."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="run a model on a benchmark set, score it on every metric and record the run",
        description="Run a model (see `vcbench models list`) on a benchmark (see `vcbench datasets list`) or a "
                    "folder of clips, score it with the same engine as `vcbench score`, and record the run in "
                    "the results database. An identical earlier run is reused unless --force.")
    p.add_argument("--model", required=True, metavar="NAME[,NAME...]",
                   help="registered model name, or several separated by commas (gray,reinhard,welsh): one pass "
                        "decodes each GT clip once and shares the GT-side scoring; each model is its own run, "
                        "reused or rerun (--force) on its own; --model-option goes to every model")
    p.add_argument("--dataset", required=True, metavar="NAME|PATH",
                   help="sample, davis30, videvo20, imagenet-ctest10k, or a folder of clips")
    p.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                   help="where the licensed sets live (default $VCBENCH_DATA_ROOT or the user data folder; "
                        "for imagenet-ctest10k the ImageNet val folder, or $VCBENCH_IMAGENET_VAL)")
    p.add_argument("--reference", choices=("first-frame", "exemplar"), default="first-frame",
                   help="first-frame: the first GT frame in colour is the reference (propagation mode, default; "
                        "models with a propagation mode, such as devc, run in it); "
                        "exemplar: a given image per clip (--exemplars, or scikit-image stills for sample)")
    p.add_argument("--exemplars", type=Path, default=None, metavar="DIR",
                   help="exemplar images: DIR/<clip>.png|jpg or DIR/<clip>/<images>")
    p.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                   help="benchmark knob recorded in the protocol, e.g. frames=8 or width=128 for sample, "
                        "limit=100 for imagenet-ctest10k (repeatable)")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="model constructor option, part of the run's identity, e.g. samples=400 (repeatable); "
                        "devc runs with geometry=leaderboard unless given (geometry=official reproduces test.py)")
    p.add_argument("--weights", type=Path, default=None, metavar="PATH",
                   help="the model's weights instead of the registry's cached file: for devc the release zip or a "
                        "folder holding its three .pth files, for zhang16/zhang17 the .pth; recorded in the run "
                        "(one model only)")
    p.add_argument("--db", type=Path, default=None, metavar="FILE",
                   help="results database (default $VCBENCH_DB or <user data dir>/vcbench/results.sqlite)")
    p.add_argument("--save-frames", type=Path, default=None, metavar="DIR",
                   help="also write the predicted frames as DIR/<model>/<clip>/%%05d.png (each clip atomically); "
                        "several models can share DIR, which `vcbench plot --frames DIR` reads")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda or cuda:N")
    p.add_argument("--metrics", default=None, metavar="LIST",
                   help="comma-separated metric names (default: all; see `vcbench metrics list`)")
    p.add_argument("--flow", default="auto", metavar="auto|dis|farneback|raft|flownet2|PATH", help=FLOW_HELP)
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="frames per scoring batch (default: from the frame size and device, as `vcbench score`)")
    p.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                   help="benchmark and GT-side cache (default $VCBENCH_CACHE_DIR or the user cache folder)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the GT-side score cache")
    p.add_argument("--force", action="store_true", help="rerun even if an identical run is recorded (replaces it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--allow-unverified-weights", action="store_true",
                   help="accept weight files whose sha256 differs from the registry's (the run is marked)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the result as JSON to OUT ('-' for stdout)")
    p.set_defaults(func=run)


def parse_options(items: list[str], flag: str) -> dict[str, Any]:
    """KEY=VALUE pairs; values are JSON when they parse as JSON (numbers, true, lists), else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _result_json(ev: Evaluation, db_path: Path) -> dict[str, Any]:
    rec = ev.record
    data = (ev.result or rec.score_result()).to_json()
    data["run"] = {"id": rec.id, "run_key": rec.run_key, "reused": ev.reused, "db": str(db_path), "model": rec.model,
                   "model_config": rec.model_config, "weights": rec.weights, "unverified_weights": rec.unverified_weights,
                   "dataset": rec.dataset, "dataset_checksum": rec.dataset_checksum,
                   "reference_mode": rec.reference_mode, "device": rec.device, "fps": rec.fps,
                   "versions": rec.versions, "created": rec.created}
    return data


def format_run(ev: Evaluation, db_path: Path | None = None) -> str:
    """The metric table (the same as `vcbench score`'s) with the run's speed and identity below."""
    rec = ev.record
    fps = f"{rec.fps:.2f} frames/s (model alone)" if rec.fps else "n/a"
    head = (f"model {rec.model} on {rec.dataset} (reference: {rec.reference_mode}); device {rec.device}; {fps}")
    where = f" in {db_path}" if db_path is not None else ""
    tail = (f"reused run {rec.id}{where}, recorded {rec.created} (pass --force to rerun)" if ev.reused
            else f"recorded as run {rec.id}{where}")
    return "\n".join([head, format_table(ev.result or rec.score_result()), tail])


def run(args: argparse.Namespace) -> int:
    from vcbench.benchmarks import load_benchmark  # lazy: CLI start-up (every command module loads)
    from vcbench.evaluate import check_model_list, evaluate_models  # lazy: CLI start-up (torch)
    from vcbench.reports.stats import json_ready  # lazy: CLI start-up (numpy)

    models = check_model_list([m.strip() for m in args.model.split(",") if m.strip()], args.weights)
    metrics = metric_list(args.metrics)
    # Output mistakes (a folder for --json, a file for --save-frames, no permission) surface now, not
    # after the model has run.
    check_json_dest(args.json)
    if args.save_frames is not None:
        check_writable(args.save_frames, folder=True)
    if args.weights is not None and not args.weights.exists():
        raise InputError("weights not found", path=args.weights,
                         hint="give the model's weight file (devc: the release zip or a folder of its .pth files)")
    if args.batch_size is not None and args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    bench = load_benchmark(args.dataset, reference=args.reference, exemplars=args.exemplars, data_root=args.data_root,
                           cache_dir=args.cache_dir, options=parse_options(args.dataset_option, "--dataset-option"))
    db = ResultsDB(args.db)
    if not args.quiet and bench.clips:  # what each model needs and what the run will cost, before it starts
        from vcbench.baselines.needs import describe  # lazy: CLI start-up (torch)

        for model in models:
            print(describe(model, parse_options(args.model_option, "--model-option"),
                           n_frames=sum(c.num_frames() for c in bench.clips), size=bench.clips[0].size(),
                           device=args.device), file=sys.stderr)
    evs = evaluate_models(models, bench, db=db, model_options=parse_options(args.model_option, "--model-option"),
                          device=args.device, metrics=metrics, flow=args.flow,
                          save_frames=args.save_frames, force=args.force, quiet=args.quiet,
                          allow_unverified_weights=args.allow_unverified_weights, batch_size=args.batch_size,
                          cache_dir=args.cache_dir, use_cache=not args.no_cache, weights=args.weights)
    out = sys.stderr if args.json == "-" else sys.stdout
    if args.json:
        runs = [_result_json(ev, db.path) for ev in evs]
        data = runs[0] if len(runs) == 1 else {"runs": runs}
        write_json_text(args.json, json.dumps(json_ready(data), indent=2, allow_nan=False) + "\n")
    print("\n\n".join(format_run(ev, db.path) for ev in evs), file=out)
    for model, ev in zip(models, evs):
        if ev.reused and args.save_frames is not None:
            print(f"vcbench: note: no frames written to {args.save_frames / model}: the stored run was reused "
                  "(pass --force to run the model again)", file=sys.stderr)
    return 0
