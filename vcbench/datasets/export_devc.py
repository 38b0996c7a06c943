"""Export a build to the folder layout DEVC's own training loader reads (`lib/videoloader.py`).

Per clip folder:
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
Each clip is written to a temporary folder and renamed, so an interrupted export resumes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from vcbench.datasets.manifest import read_manifest
from vcbench.datasets.shards import encode_image
from vcbench.errors import InputError


def _jpeg_bytes(src: Path) -> bytes:
    if src.suffix.lower() in (".jpg", ".jpeg"):
        return src.read_bytes()
    bgr = cv2.imdecode(np.frombuffer(src.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    return encode_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "jpg")


def _reference_bytes(path: str) -> bytes:
    if path.startswith("skimage:"):
        from vcbench.datasets.stills import load_skimage_still

        return encode_image(load_skimage_still(path.split(":", 1)[1]), "jpg")
    p = Path(path)
    if not p.is_file():
        raise InputError("gallery image of a reference is missing", path=p, hint="restore the --gallery folder, then rerun the export")
    return _jpeg_bytes(p)


def pairs_lines(num_frames: int, ref_ids: list[str], gt_frames: list[int]) -> list[str]:
    refs = [ref_ids[i % len(ref_ids)] for i in range(5)]
    gts = [f"{gt_frames[i % len(gt_frames)]:05d}.jpg" for i in range(3)]
    lines = []
    for t in range(num_frames - 1):
        cols = [f"{t:05d}.jpg", f"{t + 1:05d}.jpg", gts[0], gts[1], *[f"{r}.JPEG" for r in refs], *gts]
        lines.append(" ".join(cols))
    return lines


def export_clip(root: Path, row, dest: Path) -> None:
    from vcbench.flow.flo import encode_flo

    files = sorted(json.loads(row.files))
    flow_files = json.loads(row.flow_files)
    refs = json.loads(row.references)
    if not flow_files:
        raise InputError("the build has no flow (built with --flow none); DEVC's loader needs flow and masks",
                         path=root, hint="rebuild with --flow dis (or another estimator) into a new --out")
    if not refs:
        raise InputError("the build has no references (built with --features none); DEVC's loader needs 5",
                         path=root, hint="rebuild with --features weightfree (or vgg19) into a new --out")
    tmp = dest.with_name(f".{dest.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("input_pad", "reference", "reference_gt", "flow", "mask"):
        (tmp / sub).mkdir(parents=True)
    n = len(files)
    for t, rel in enumerate(files):
        data = _jpeg_bytes(root / rel)
        (tmp / "input_pad" / f"{t:05d}.jpg").write_bytes(data)
    gt_frames = sorted({0, n // 2, n - 1})
    for t in gt_frames:
        shutil.copyfile(tmp / "input_pad" / f"{t:05d}.jpg", tmp / "reference_gt" / f"{t:05d}.jpg")
    ref_ids = []
    for r in refs:
        rid = r["id"].replace(".", "_")
        ref_ids.append(rid)
        (tmp / "reference" / f"{rid}.JPEG").write_bytes(_reference_bytes(r["path"]))
    shard_clip = Path(next(iter(flow_files))).parent
    fw = np.load(root / shard_clip / "flow_fw.npy").astype(np.float32)
    bw = np.load(root / shard_clip / "flow_bw.npy").astype(np.float32)
    for t in range(n - 1):
        (tmp / "flow" / f"{t:05d}_forward.flo").write_bytes(encode_flo(fw[t]))
        (tmp / "flow" / f"{t:05d}_backward.flo").write_bytes(encode_flo(bw[t]))
        mask = cv2.imdecode(np.frombuffer((root / shard_clip / "mask" / f"{t:05d}.png").read_bytes(), np.uint8),
                            cv2.IMREAD_GRAYSCALE)
        (tmp / "mask" / f"{t:05d}_mask.pgm").write_bytes(encode_image(mask, "pgm"))
    (tmp / "pairs_output_new.txt").write_text("\n".join(pairs_lines(n, ref_ids, gt_frames)) + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def export_devc(root: str | Path, dest: str | Path, *, quiet: bool = False) -> dict:
    """Write every clip of the build at `root` into `dest` in DEVC's layout; skips finished clips."""
    from tqdm import tqdm

    root, dest = Path(root), Path(dest)
    manifest = root / "manifest.parquet"
    if not manifest.is_file():
        raise InputError("no manifest.parquet: the build is not complete", path=root,
                         hint="rerun the same build-dataset command first")
    df = read_manifest(manifest)
    dest.mkdir(parents=True, exist_ok=True)
    written = 0
    for row in tqdm(list(df.itertuples(index=False)), unit="clip", desc="export-devc", disable=quiet):
        target = dest / row.clip_id
        if (target / "pairs_output_new.txt").is_file():
            continue
        export_clip(root, row, target)
        written += 1
    return {"dir": str(dest), "clips": int(len(df)), "written": written}
