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

One folder holds one build's export, never a mix that DEVC's loader (which reads every sub-folder
of its data root as a clip) would take for one dataset: `vcbench-export.json` (a file, which the
loader skips) records the build's id and manifest sha256; an export into a folder that records
another build, or that holds clip folders without such a record, is refused. The export holds the
folder's lock (`vcbench.lock.FolderLock`) while it runs; each clip is written in its writer's own
temporary folder and renamed when complete, so an interrupted export resumes where it stopped and
leaves no partial clip (temporary folders of a dead export are removed by the next one).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from vcbench.atomic import atomic_write_text, write_bytes, write_errors
from vcbench.datasets.manifest import read_manifest
from vcbench.datasets.shards import encode_image
from vcbench.errors import InputError
from vcbench.hashing import sha256_file
from vcbench.lock import FolderLock, PrivateDir, sweep_private_dirs

MARKER = "vcbench-export.json"
MARKER_FORMAT = "vcbench-devc-export/1"


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


def _check_exportable(root: Path, flow_files: dict, refs: list) -> None:
    if not flow_files:
        raise InputError("the build has no flow (built with --flow none); DEVC's loader needs flow and masks",
                         path=root, hint="rebuild with --flow dis (or another estimator) into a new --out")
    if not refs:
        raise InputError("the build has no references (built with --features none); DEVC's loader needs 5",
                         path=root, hint="rebuild with --features weightfree (or vgg19) into a new --out")


def export_clip(root: Path, row, dest: Path) -> None:
    """One clip, written in a private temporary folder and renamed onto `dest` when complete."""
    files = sorted(json.loads(row.files))
    flow_files = json.loads(row.flow_files)
    refs = json.loads(row.references)
    _check_exportable(root, flow_files, refs)
    work = PrivateDir(dest.parent, dest.name)
    try:
        _write_clip(root, row, work.path, files, flow_files, refs)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(work.path, dest)
    except BaseException:
        work.discard()
        raise
    work.release()


def _write_clip(root: Path, row, tmp: Path, files: list[str], flow_files: dict, refs: list[dict]) -> None:
    from vcbench.flow.flo import encode_flo

    for sub in ("input_pad", "reference", "reference_gt", "flow", "mask"):
        (tmp / sub).mkdir(parents=True)
    n = len(files)
    for t, rel in enumerate(files):
        data = _jpeg_bytes(root / rel)
        write_bytes(tmp / "input_pad" / f"{t:05d}.jpg", data)
    gt_frames = sorted({0, n // 2, n - 1})
    for t in gt_frames:
        with write_errors(tmp / "reference_gt" / f"{t:05d}.jpg"):
            shutil.copyfile(tmp / "input_pad" / f"{t:05d}.jpg", tmp / "reference_gt" / f"{t:05d}.jpg")
    ref_ids = []
    for r in refs:
        rid = r["id"].replace(".", "_")
        ref_ids.append(rid)
        write_bytes(tmp / "reference" / f"{rid}.JPEG", _reference_bytes(r["path"]))
    shard_clip = Path(next(iter(flow_files))).parent
    fw = np.load(root / shard_clip / "flow_fw.npy").astype(np.float32)
    bw = np.load(root / shard_clip / "flow_bw.npy").astype(np.float32)
    for t in range(n - 1):
        write_bytes(tmp / "flow" / f"{t:05d}_forward.flo", encode_flo(fw[t]))
        write_bytes(tmp / "flow" / f"{t:05d}_backward.flo", encode_flo(bw[t]))
        mask = cv2.imdecode(np.frombuffer((root / shard_clip / "mask" / f"{t:05d}.png").read_bytes(), np.uint8),
                            cv2.IMREAD_GRAYSCALE)
        write_bytes(tmp / "mask" / f"{t:05d}_mask.pgm", encode_image(mask, "pgm"))
    write_bytes(tmp / "pairs_output_new.txt", ("\n".join(pairs_lines(n, ref_ids, gt_frames)) + "\n").encode())


def read_marker(dest: Path) -> dict | None:
    """The export record of `dest` (None when there is none); InputError when it is unreadable."""
    path = Path(dest) / MARKER
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        rec = None
    if not isinstance(rec, dict) or rec.get("format") != MARKER_FORMAT:
        raise InputError(f"unreadable {MARKER}: cannot tell which build this export belongs to", path=dest,
                         hint="choose another --export-devc folder, or delete this one and export again")
    return rec


def check_export_dest(dest: str | Path, build_id: str, manifest_sha256: str | None = None,
                      clip_ids: set[str] | None = None) -> None:
    """Refuse a destination that holds another build's export (its record names another build id or
    manifest) or clip folders that no export of this build wrote. Callable before the build runs
    (with the build id alone), so a long build does not end in a refused export."""
    dest = Path(dest)
    if not dest.is_dir():
        return
    rec = read_marker(dest)
    if rec is not None and (rec.get("build_id") != build_id or
                            (manifest_sha256 is not None and rec.get("manifest_sha256") != manifest_sha256)):
        raise InputError(f"this folder holds the DEVC export of another build (build {rec.get('build_id')} "
                         f"from {rec.get('build')}); a second export would mix two builds", path=dest,
                         hint="choose another --export-devc folder, or delete this one and export again")
    foreign = sorted(p.name for p in dest.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and (rec is None or (clip_ids is not None and p.name not in clip_ids)))
    if foreign:
        what = "clip folders that no export of this build wrote" if rec is not None else \
            f"folders but no {MARKER} (not an export of this build)"
        raise InputError(f"this folder holds {what} ({', '.join(foreign[:3])}"
                         f"{f' and {len(foreign) - 3} more' if len(foreign) > 3 else ''}); DEVC's loader would read "
                         "them as part of this dataset", path=dest,
                         hint="choose an empty folder for --export-devc")


def export_devc(root: str | Path, dest: str | Path, *, quiet: bool = False) -> dict:
    """Write every clip of the build at `root` into `dest` in DEVC's layout; resumes an interrupted
    export of the same build (finished clips are kept) and refuses a folder of another build's."""
    from tqdm import tqdm

    from vcbench.datasets.pipeline import build_id

    root, dest = Path(root), Path(dest)
    manifest = root / "manifest.parquet"
    if not manifest.is_file():
        raise InputError("no manifest.parquet: the build is not complete", path=root,
                         hint="rerun the same build-dataset command first")
    df = read_manifest(manifest)
    try:
        record = json.loads((root / "build.json").read_text())
    except (OSError, ValueError):
        raise InputError("build.json is missing or unreadable, so the export cannot record which build it is",
                         path=root, hint="rerun the same build-dataset command first (it rewrites build.json)") from None
    for row in df.head(1).itertuples(index=False):
        _check_exportable(root, json.loads(row.flow_files), json.loads(row.references))
    ident = {"format": MARKER_FORMAT, "build_id": build_id(record), "manifest_sha256": sha256_file(manifest),
             "build": str(root.resolve()), "clips": int(len(df))}
    written = 0
    with FolderLock(dest, "DEVC export"):
        check_export_dest(dest, ident["build_id"], ident["manifest_sha256"], set(df["clip_id"]))
        sweep_private_dirs(dest)
        for p in dest.iterdir():  # the layout before private writers: `.<clip>.tmp`
            if p.is_dir() and p.name.startswith(".") and p.name.endswith(".tmp") and p.name[1:-4] in set(df["clip_id"]):
                shutil.rmtree(p)
        if read_marker(dest) is None:
            atomic_write_text(dest / MARKER, json.dumps(ident, indent=1, sort_keys=True) + "\n")
        for row in tqdm(list(df.itertuples(index=False)), unit="clip", desc="export-devc", disable=quiet):
            target = dest / row.clip_id
            if (target / "pairs_output_new.txt").is_file():
                continue
            export_clip(root, row, target)
            written += 1
    return {"dir": str(dest), "clips": int(len(df)), "written": written}
