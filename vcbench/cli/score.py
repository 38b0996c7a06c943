"""`vcbench score`: rank any model's frames against the GT on every metric of protocol vcbench-v1.

A thin wrapper over `vcbench.metrics.scorer.Scorer`: parse options, check the inputs, run the
streaming pass, print a table and (optionally) write the JSON atomically. Every user mistake is a
`VcbenchError`, printed as one line by `vcbench.cli.main`; the JSON is written only after the whole
run succeeded, so a failed run leaves no file behind.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from vcbench.cli.common import check_json_dest, metric_list, write_json_text
from vcbench.cli.table import format_table as _table
from vcbench.labels import read_class_labels

FLOW_HELP = (
    "GT optical flow for warp_error and flicker: dis (OpenCV DIS, no weights, offline; the default here), "
    "farneback, raft, flownet2 (the field's standard, used for published leaderboard numbers: pass it "
    "explicitly), or a folder of precomputed flow in Lai's layout (PATH/fw_flow/<clip>/%%05d.flo ...). "
    "The protocol name records the estimator (vcbench-v1/dis, vcbench-v1/flownet2, ...): warp error and "
    "flicker compare only under the same one."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score predicted frames against GT frames on every metric",
        description="Score a folder of predicted clips against the GT clips (one sub-folder of frames or "
                    "one video file per clip, paired by name and frame order) on psnr, ssim, lpips, fid, kid, "
                    "colorfulness, top1, top5, warp_error, flicker and cdc.",
    )
    p.add_argument("--pred", required=True, type=Path, metavar="DIR", help="predicted clips")
    p.add_argument("--gt", required=True, type=Path, metavar="DIR", help="ground-truth clips")
    p.add_argument("--metrics", default=None, metavar="LIST",
                   help="comma-separated metric names (default: all; see `vcbench metrics list`)")
    p.add_argument("--flow", default="dis", metavar="dis|farneback|raft|flownet2|PATH", help=FLOW_HELP)
    p.add_argument("--json", default=None, metavar="OUT",
                   help="write the results as JSON to OUT (atomically; '-' for stdout)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="frames per batch (default: from the frame size and device, ~24 MB of frames on the CPU: "
                        "20 at 854x480, 9 at 1280x720, 4 at 1920x1080); the metrics chunk further to bound memory")
    p.add_argument("--resize", action="store_true",
                   help="resample predictions whose size differs from the GT to the GT size (bicubic, "
                        "antialiased; recorded in the protocol). Without it a size mismatch is an error")
    p.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                   help="where GT-side results (flow, Inception features, classifier labels) are cached "
                        "(default: the user cache folder, or $VCBENCH_CACHE_DIR)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the GT-side cache")
    p.add_argument("--labels", type=Path, default=None, metavar="FILE|imagenet-ctest10k",
                   help="true ImageNet class of each clip or image (`name class` per line, e.g. the ctest10k "
                        "list, or name,class CSV; `imagenet-ctest10k` names the bundled list): top1/top5 become "
                        "accuracies. Without it the label is the classifier's top-1 on the GT frame")
    p.add_argument("--images", action="store_true",
                   help="--pred and --gt are image sets: each image is a one-frame clip, paired by file stem "
                        "(e.g. ImageNet ctest10k); temporal metrics are then undefined")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--allow-unverified-weights", action="store_true",
                   help="accept weight files whose sha256 differs from the registry's (the run is marked)")
    p.set_defaults(func=run)


def _fmt(v: float | None, digits: int = 6) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}g}"


def format_table(result: Any) -> str:
    """A plain-text table: metric, value, direction, the GT's own value (colourfulness, flicker) and,
    where the registry asks for it (`MetricInfo.gt_ratio`: colourfulness), the ratio prediction / GT."""
    from vcbench.metrics.registry import METRICS  # lazy: CLI start-up (every command module loads)

    rows = [("metric", "value", "direction", "GT")]
    for name, value in result.metrics.items():
        if name in result.unavailable:
            continue
        info = METRICS.get(name)
        gt = result.gt_metrics.get(name)
        gt_s = _fmt(gt) if name in result.gt_metrics else ""
        if info is not None and info.gt_ratio and gt and value is not None:
            gt_s += f" (ratio {value / gt:.3f})"
        rows.append((name, _fmt(value), "" if info is None else info.direction.table, gt_s))
    lines = _table(rows[0], rows[1:]).splitlines()
    proto = result.protocol
    lines.append("")
    lines.append(f"{result.n_clips} clips, {result.n_frames} frames; protocol {proto.get('name')}")
    pooled = proto.get("pooled_frames") or {}
    if pooled:
        lines.append(f"{', '.join(pooled)} pooled over {max(pooled.values())} frames")
    for note in proto.get("notes", []):
        lines.append(f"note: {note}")
    by_reason: dict[str, list[str]] = {}  # metrics that share a missing file (fid+kid, top1+top5): one line
    for name, reason in result.unavailable.items():
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        lines.append(f"unavailable: {', '.join(names)}: {reason}")
    return "\n".join(lines)


def _read_labels(arg: Path) -> dict[str, int]:
    """A label file, or the bundled ctest10k list by name (keys: image file stems)."""
    if str(arg) == "imagenet-ctest10k" and not arg.exists():
        from vcbench.benchmarks import imagenet_entries  # lazy: CLI start-up (every command module loads)

        return {Path(fname).stem: label for _, fname, label in imagenet_entries()}
    return read_class_labels(arg)


def _score(args: argparse.Namespace, metrics: list[str] | None, labels: dict[str, int] | None) -> Any:
    """The run's ScoreResult: the torch-free scorer when it covers every requested metric (cdc and
    colorfulness on the CPU: same numbers and output, no torch import), else the streaming scorer."""
    from vcbench.metrics import light  # lazy: CLI start-up (cv2; every command module loads)

    names = light.light_request(metrics, device=args.device, resize=args.resize, flow=args.flow,
                                batch_size=args.batch_size)
    if names is not None:
        return light.score_dirs(args.pred, args.gt, names, flow=args.flow, batch_size=args.batch_size,
                                use_cache=not args.no_cache, labels=labels, images=args.images,
                                progress=not args.quiet)
    from vcbench.metrics.scorer import Scorer  # lazy: CLI start-up (torch; every command module loads)

    scorer = Scorer(metrics, device=args.device, flow=args.flow, batch_size=args.batch_size,
                    cache_dir=args.cache_dir, use_cache=not args.no_cache, resize=args.resize,
                    allow_unverified_weights=args.allow_unverified_weights, progress=not args.quiet)
    return scorer.score_dirs(args.pred, args.gt, labels=labels, images=args.images)


def run(args: argparse.Namespace) -> int:
    metrics = metric_list(args.metrics)
    check_json_dest(args.json)
    labels = _read_labels(args.labels) if args.labels is not None else None
    result = _score(args, metrics, labels)
    table_out: TextIO = sys.stderr if args.json == "-" else sys.stdout
    if args.json:
        write_json_text(args.json, result.dumps() + "\n")
    print(format_table(result), file=table_out)
    return 0
