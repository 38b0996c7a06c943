"""Export a build to the folder layouts DEVC's own training loaders read (`vcbench datasets export`).

A build-dataset folder becomes DEVC's `--data_root` (`lib/videoloader.py`), one folder per clip:
  input_pad/%05d.jpg        the frames
  reference/<id>.JPEG       the 5 retrieved gallery images
  reference_gt/%05d.jpg     three frames of the clip itself (first, middle, last)
  flow/%05d_forward.flo     flow from frame t to t+1 (Middlebury .flo, float32)
  flow/%05d_backward.flo    flow from frame t+1 to t
  mask/%05d_mask.pgm        255 where frame t's pixel is visible in t+1 (the loader keeps >= 240)
  pairs_output_new.txt      one line per consecutive pair, 12 columns:
      img1 img2 refvid refvid1 ref1 ref2 ref3 ref4 ref5 refgt1 refgt2 refgt3
  img1/img2 are frames t and t+1 (flow and mask are named after img1); ref1..ref5 name files in
  reference/ (the loader appends .JPEG); refgt1..3 name files in reference_gt/ (.jpg); refvid and
  refvid1 are parsed but never opened by the loader: we write the first and middle frame there.
Names never contain a dot before the extension, because the loader cuts names at the first '.'.
A build-pairs folder becomes its `--data_root_imagenet` (`vcbench.trainset.export_pairs`).

What it costs: JPEG frames and gallery images are hard links to the build's files (no bytes; a copy
where the two folders are on different file systems, or with `link=False`); masks are written as
PGM; flow must be converted, because DEVC reads raw float32 `.flo` (8 bytes per pixel and pair:
at 216x384 and 24 pairs, 31.9 MB per clip, against 2-4 MB of PNG flow in the build).
`backward_flow="zero"` links every `_backward.flo` to one all-zero file: DEVC's train.py never
uses the backward flow (its ImageNet loader passes zeros itself), which halves that.

The folder rules (one build per folder, its record, the lock, private writers, resume) are
`vcbench.trainset.export.run_export`'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from vcbench.atomic import atomic_write_bytes
from vcbench.errors import InputError
from vcbench.flow.flo import encode_flo
from vcbench.stills import load_skimage_still
from vcbench.trainset.export import Placer, build_identity, run_export
from vcbench.trainset.export_pairs import export_pairs
from vcbench.trainset.layout import DevcClip, DevcLayout, devc_frame_name, devc_image_name
from vcbench.trainset.manifest import read_manifest
from vcbench.trainset.shards import clip_flow_files, clip_mask_files, encode_image, read_stored_flow

BACKWARD_FLOW = ("full", "zero")


def _reference(path: str, dst: Path, place: Placer) -> None:
    if path.startswith("skimage:"):
        place.bytes(dst, encode_image(load_skimage_still(path.split(":", 1)[1]), "jpg"))
        return
    p = Path(path)
    if not p.is_file():
        raise InputError("gallery image of a reference is missing", path=p, hint="restore the --gallery folder, then rerun the export")
    place.jpeg(p, dst)


def pairs_lines(num_frames: int, ref_ids: list[str], gt_frames: list[int]) -> list[str]:
    refs = [ref_ids[i % len(ref_ids)] for i in range(5)]
    gts = [devc_frame_name(gt_frames[i % len(gt_frames)]) for i in range(3)]
    lines = []
    for t in range(num_frames - 1):
        cols = [devc_frame_name(t), devc_frame_name(t + 1), gts[0], gts[1], *[devc_image_name(r) for r in refs], *gts]
        lines.append(" ".join(cols))
    return lines


def _check_exportable(root: Path, flow_files: dict, refs: list) -> None:
    if not flow_files:
        raise InputError("the build has no flow (built with --flow none); DEVC's loader needs flow and masks",
                         path=root, hint="rebuild with --flow dis (or another estimator) into a new --out")
    if not refs:
        raise InputError("the build has no references (built with --features none); DEVC's loader needs 5",
                         path=root, hint="rebuild with --features weightfree (or vgg19) into a new --out")


def _write_clip(root: Path, row, tmp: Path, place: Placer, zero_flow: Path | None = None) -> None:
    """One clip's files in `tmp` (its writer's private folder). `zero_flow`: the all-zero .flo that
    every backward flow links to (backward_flow="zero"); None writes the real backward flow."""
    files = sorted(json.loads(row.files))
    flow_files = json.loads(row.flow_files)
    refs = json.loads(row.references)
    _check_exportable(root, flow_files, refs)
    clip = DevcClip(tmp)
    for sub in clip.DIRS:
        (tmp / sub).mkdir(parents=True)
    n = len(files)
    for t, rel in enumerate(files):
        place.jpeg(root / rel, clip.frame(t))
    gt_frames = sorted({0, n // 2, n - 1})
    for t in gt_frames:
        place.file(clip.frame(t), clip.reference_gt(t))
    ref_ids = []
    for r in refs:
        rid = r["id"].replace(".", "_")
        ref_ids.append(rid)
        _reference(r["path"], clip.reference(rid), place)
    fw, bw, masks = clip_flow_files(flow_files, "fw"), clip_flow_files(flow_files, "bw"), clip_mask_files(flow_files)
    if not (len(fw) == len(bw) == len(masks) == n - 1):
        raise InputError(f"clip {row.clip_id} has {len(fw)} forward, {len(bw)} backward flow files and {len(masks)} "
                         f"masks for {n} frames", path=root, hint="run vcbench datasets verify on the build")
    for t in range(n - 1):
        place.bytes(clip.flow(t, "forward"), encode_flo(read_stored_flow(root, fw[t])))
        if zero_flow is not None:
            place.file(zero_flow, clip.flow(t, "backward"))
        else:
            place.bytes(clip.flow(t, "backward"), encode_flo(read_stored_flow(root, bw[t])))
        mask = cv2.imdecode(np.frombuffer((root / masks[t]).read_bytes(), np.uint8), cv2.IMREAD_GRAYSCALE)
        place.bytes(clip.mask(t), encode_image(mask, "pgm"))
    place.bytes(clip.pairs, ("\n".join(pairs_lines(n, ref_ids, gt_frames)) + "\n").encode())


# ------------------------------------------------------------------------------------ the export
def export_bytes_per_clip(height: int, width: int, frames: int) -> dict:
    """What the DEVC export writes per clip beyond links (JPEG frames and gallery images are linked):
    float32 .flo (forward, backward) and PGM masks per pair; references of a non-JPEG gallery add
    their re-encoded JPEGs on top."""
    pairs = frames - 1
    flo = 12 + 8 * height * width
    pgm = len(f"P5\n{width} {height}\n255\n") + height * width
    return {"flow": 2 * pairs * flo, "masks": pairs * pgm, "total": pairs * (2 * flo + pgm),
            "total_backward_zero": pairs * (flo + pgm)}


def export_devc(root: str | Path, dest: str | Path, *, quiet: bool = False, link: bool = True,
                backward_flow: str = "full") -> dict:
    """Write every clip of the build-dataset folder `root` into `dest` in DEVC's layout; resumes an
    interrupted export of the same build (finished clips are kept) and refuses a folder of another
    build's. `link`: hard-link JPEG frames and gallery images; `backward_flow`: "full" or "zero"."""
    root, dest = Path(root), Path(dest)
    layout = DevcLayout(dest)
    if backward_flow not in BACKWARD_FLOW:
        raise InputError(f"unknown backward flow mode {backward_flow!r}", hint="use full or zero")
    record, manifest = build_identity(root, "clips")
    if record.get("kind") == "pairs":
        return export_pairs(root, dest, quiet=quiet, link=link)
    df = read_manifest(manifest)
    for row in df.head(1).itertuples(index=False):
        _check_exportable(root, json.loads(row.flow_files), json.loads(row.references))
    rows = {row.clip_id: row for row in df.itertuples(index=False)}
    sizes = sorted({(int(r.height), int(r.width)) for r in rows.values()})
    options = {} if backward_flow == "full" else {"backward_flow": backward_flow}

    def prepare(place: Placer) -> None:
        for h, w in sizes if backward_flow == "zero" else ():
            path = layout.zero_flow(h, w)
            if not path.is_file():
                atomic_write_bytes(path, encode_flo(np.zeros((h, w, 2), np.float32)))

    def write(name: str, tmp: Path, place: Placer) -> None:
        row = rows[name]
        zero = layout.zero_flow(int(row.height), int(row.width)) if backward_flow == "zero" else None
        _write_clip(root, row, tmp, place, zero)

    res = run_export(root, dest, kind="clips", record=record, manifest=manifest, units=list(rows), write_unit=write,
                     done_file=DevcClip.PAIRS_FILE, options=options, count_key="clips", link=link, quiet=quiet,
                     prepare=prepare)
    res["bytes_per_clip"] = round((res["bytes_written"] + res["bytes_linked"]) / max(1, res["written"])) \
        if res["written"] else None
    return res
