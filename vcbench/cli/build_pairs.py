"""`vcbench build-pairs`: an ImageNet-style folder -> DEVC's reference pair set (`--data_root_imagenet`).

A thin wrapper over `vcbench.trainset.pairs.build_pairs`; the same conventions as build-dataset
(rerun to resume, byte-identical on the CPU, --executor local|ray, --export-devc as a shortcut for
`vcbench datasets export --format devc`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vcbench.trainset.pair_choices import FEATURES, SOURCES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build-pairs",
        help="build DEVC's ImageNet reference pairs (same-class nearest neighbours in three tiers)",
        description="For every image of every class, retrieve its nearest same-class images by gray-image "
                    "descriptors (faiss, GPU when present) and write them as good/mid/bad pairs, one shard per "
                    "class, with a manifest. Rerun the same command to resume.",
    )
    p.add_argument("--source", required=True, choices=SOURCES,
                   help="sample: scikit-image stills as classes (offline); local: DIR/<class>/<image>; "
                        "imagenet: ILSVRC's train folder (WordNet-id class folders)")
    p.add_argument("--input", type=Path, default=None, metavar="DIR", help="the class folders (local, imagenet)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="build folder (created; resumed if it exists)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the sample's views (default 0)")
    p.add_argument("--features", choices=FEATURES, default="weightfree_gray",
                   help="gray-image descriptor (weightfree_gray: offline default; vgg19 needs its weights)")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="neighbours per image (default 5)")
    p.add_argument("--good-ranks", type=int, default=2, metavar="G",
                   help="ranks 1..G with a score > 0 go to pairs.txt (default 2)")
    p.add_argument("--mid-ranks", type=int, default=2, metavar="M",
                   help="the next M ranks go to pairs_mid.txt, the rest to pairs_bad.txt (default 2)")
    p.add_argument("--views", type=int, default=8, metavar="N", help="--source sample: images per class (default 8)")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--address", default=None, help="Ray cluster address for --executor ray (default: start a local one)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="local worker processes (default: all cores)")
    p.add_argument("--gpus-per-task", type=float, default=1.0, metavar="G",
                   help="GPUs a vgg19 class task asks from a Ray cluster that has GPUs (default 1)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where descriptors and the index run (default auto: CUDA when present; the CPU is byte-identical run to run)")
    p.add_argument("--allow-unverified-weights", action="store_true",
                   help="use a VGG19 file whose sha256 differs from the registry's; the build records it as unverified")
    p.add_argument("--export-devc", type=Path, default=None, metavar="DIR",
                   help="also write DEVC's --data_root_imagenet layout there (a folder of another build's export is refused)")
    p.add_argument("--copy", action="store_true", help="with --export-devc: copy images instead of hard-linking them")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the totals as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vcbench.trainset.pairs import PairConfig, build_pairs, check_pair_config  # lazy: CLI start-up
    from vcbench.trainset.config import RunOptions, build_id, build_record  # lazy: CLI start-up
    from vcbench.trainset.validate import resolve_build_weights  # lazy: CLI start-up

    cfg = PairConfig(source=args.source, input=str(args.input.resolve()) if args.input else None, seed=args.seed,
                     features=args.features, top_k=args.top_k, good_ranks=args.good_ranks, mid_ranks=args.mid_ranks,
                     views=args.views)
    opts = RunOptions(executor=args.executor, address=args.address, workers=args.workers,
                      num_gpus_per_task=args.gpus_per_task, quiet=args.quiet,
                      allow_unverified=args.allow_unverified_weights, device=None if args.device == "auto" else args.device)
    if args.export_devc is not None:  # a folder of another build's export is refused before the build, not after
        from vcbench.trainset.export import check_export_dest  # lazy: CLI start-up

        check_pair_config(cfg)
        weights = resolve_build_weights(cfg, allow_unverified=opts.allow_unverified, quiet=True)
        check_export_dest(args.export_devc, build_id(build_record(cfg, weights)), options={})
    totals = build_pairs(cfg, args.out, opts)
    if args.export_devc is not None:
        from vcbench.trainset.export_pairs import export_pairs  # lazy: CLI start-up

        totals["devc_export"] = export_pairs(args.out, args.export_devc, quiet=args.quiet, link=not args.copy)
    if args.json:
        print(json.dumps(totals, indent=1, sort_keys=True))
    else:
        t = totals["pairs"]
        print(f"{totals['images']} images in {totals['classes']} classes at {args.out}: {t['good']} good, {t['mid']} mid, "
              f"{t['bad']} bad pairs ({totals['image_failures']} unreadable images)")
    return 0
