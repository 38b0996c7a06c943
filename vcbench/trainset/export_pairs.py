"""Export a build-pairs folder as DEVC's `--data_root_imagenet` (read by its `lib/videoloader_imagenet.py`).

One folder per class:
  input/<id>.JPEG       the images of the good pairs      pairs.txt      `a.JPEG b.JPEG score`
  input_mid/<id>.JPEG   the images of the mid pairs       pairs_mid.txt  (same columns)
  input_bad/<id>.JPEG   the images of the bad pairs       pairs_bad.txt  (same columns)
DEVC's loader reads every sub-folder of the root as a class and fails on one without `pairs.txt`,
so every class gets all three files (possibly empty); it takes a `pairs.txt` line when its score is
> 0 and every mid/bad line (train.py's `--with_mid`/`--with_bad` are always true: argparse's
`type=bool`), each both ways, and opens the two images in the tier's folder. Names hold exactly one
dot (the loader unpacks `name.split(".")` into two), single spaces separate the columns.

Images are hard links to the source files (ImageNet's JPEGs) or to the build's stored views: an
image in two tiers costs nothing twice. A source image that is not a JPEG file is re-encoded.
The folder rules (one build per folder, private writers, resume) are `export.run_export`'s.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from vcbench.trainset.export import Placer, build_identity, run_export
from vcbench.trainset.layout import DEVC_PAIR_TIERS, BuildLayout, devc_image_name
from vcbench.trainset.manifest import read_manifest
from vcbench.errors import InputError


def pair_line(a: str, b: str, score: float) -> str:
    return f"{devc_image_name(a)} {devc_image_name(b)} {score:.6f}"


def export_pairs(root: str | Path, dest: str | Path, *, quiet: bool = False, link: bool = True) -> dict:
    """Write every class of the pair build at `root` into `dest` in DEVC's ImageNet pair layout."""
    root, dest = Path(root), Path(dest)
    record, manifest = build_identity(root, "pairs")
    images = read_manifest(manifest)
    try:
        pairs = pq.read_table(BuildLayout(root).pairs).to_pandas()
    except OSError as exc:
        raise InputError(f"unreadable pairs.parquet ({exc})", path=root, hint="rerun the same build-pairs command") from exc
    if not len(pairs):
        raise InputError("the build holds no pairs; DEVC's train.py refuses an empty pair set", path=root,
                         hint="add images per class or raise --top-k, then build again")
    by_class = {c: g for c, g in images.groupby("class", sort=False)}
    pairs_by_class = {c: g for c, g in pairs.groupby("class", sort=False)}

    def write(name: str, tmp: Path, place: Placer) -> None:
        rows = by_class[name]
        src = {r.image_id: (root / r.file if r.file else Path(r.origin)) for r in rows.itertuples(index=False)}
        cp = pairs_by_class.get(name)
        for tier, (folder, list_name) in DEVC_PAIR_TIERS.items():
            sel = cp[cp["tier"] == tier] if cp is not None else cp
            lines = [pair_line(p.a, p.b, p.score) for p in sel.itertuples(index=False)] if sel is not None else []
            (tmp / folder).mkdir(parents=True)
            for iid in sorted({i for p in (sel.itertuples(index=False) if sel is not None else []) for i in (p.a, p.b)}):
                if not src[iid].is_file():
                    raise InputError(f"image {iid} of class {name} is missing", path=src[iid],
                                     hint="restore the input folder (vcbench datasets verify lists what changed)")
                place.jpeg(src[iid], tmp / folder / devc_image_name(iid))
            place.bytes(tmp / list_name, "".join(line + "\n" for line in lines).encode())

    res = run_export(root, dest, kind="pairs", record=record, manifest=manifest, units=list(by_class), write_unit=write,
                     done_file=DEVC_PAIR_TIERS["good"][1], options={}, count_key="classes", link=link, quiet=quiet,
                     desc="export-devc pairs")
    res["pairs"] = {t: int((pairs["tier"] == t).sum()) for t in DEVC_PAIR_TIERS}
    return res
