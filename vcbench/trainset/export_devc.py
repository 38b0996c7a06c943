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

One folder holds one build's export, never a mix that DEVC's loader (which reads every sub-folder
of its data root as a clip or class) would take for one dataset: `vcbench-export.json` (a file,
which the loaders skip) records the build's id, manifest sha256, kind and options; an export into
a folder that records another build or other options, or that holds folders without such a
record, is refused. The export holds the folder's lock (`vcbench.lock.FolderLock`) while it runs;
each clip (class) is written in its writer's own temporary folder and renamed when complete, so an
interrupted export resumes where it stopped and leaves no partial unit (temporary folders of a dead
export are removed by the next one).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
from tqdm import tqdm

from vcbench.atomic import atomic_write_bytes, atomic_write_text, write_bytes, write_errors
from vcbench.errors import InputError
from vcbench.flow.flo import encode_flo
from vcbench.frames import read_image
from vcbench.hashing import sha256_file
from vcbench.lock import FolderLock, PrivateDir, sweep_private_dirs
from vcbench.stills import load_skimage_still
from vcbench.trainset.config import build_id
from vcbench.trainset.layout import MARKER, BuildLayout, DevcClip, DevcLayout, devc_frame_name, devc_image_name
from vcbench.trainset.manifest import read_manifest
from vcbench.trainset.shards import clip_flow_files, clip_mask_files, encode_image, read_stored_flow

MARKER_FORMAT = "vcbench-devc-export/1"
BACKWARD_FLOW = ("full", "zero")


# ------------------------------------------------------------------------------ files of an export
class Placer:
    """Puts files into an export: a hard link to an existing file where it can (`link`), else a
    copy; counts the bytes written and those shared by links."""

    def __init__(self, link: bool = True):
        self.link = link
        self.written = 0
        self.linked = 0

    def bytes(self, dst: Path, data: bytes) -> None:
        write_bytes(dst, data)
        self.written += len(data)

    def file(self, src: Path, dst: Path) -> None:
        size = src.stat().st_size
        if self.link:
            try:
                os.link(src, dst)
                self.linked += size
                return
            except OSError as exc:  # another file system, or one without hard links: copy instead
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
        with write_errors(dst, size=size):
            shutil.copyfile(src, dst)
        self.written += size

    def jpeg(self, src: Path, dst: Path) -> None:
        """A JPEG file as it is (linked), any other image re-encoded as JPEG (quality 95, 4:4:4)."""
        if src.suffix.lower() in (".jpg", ".jpeg"):
            self.file(src, dst)
        else:
            self.bytes(dst, _jpeg_bytes(src))

    def stats(self) -> dict:
        return {"bytes_written": self.written, "bytes_linked": self.linked}


def _jpeg_bytes(src: Path) -> bytes:
    if src.suffix.lower() in (".jpg", ".jpeg"):
        return src.read_bytes()
    return encode_image(read_image(src), "jpg")


def _reference(path: str, dst: Path, place: Placer) -> None:
    if path.startswith("skimage:"):
        place.bytes(dst, encode_image(load_skimage_still(path.split(":", 1)[1]), "jpg"))
        return
    p = Path(path)
    if not p.is_file():
        raise InputError("gallery image of a reference is missing", path=p, hint="restore the --gallery folder, then rerun the export")
    place.jpeg(p, dst)


# ------------------------------------------------------------------------------- the video clips
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


# -------------------------------------------------------------------------- one build per folder
def read_marker(dest: Path) -> dict | None:
    """The export record of `dest` (None when there is none); InputError when it is unreadable."""
    path = DevcLayout(dest).marker
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        rec = None
    if not isinstance(rec, dict) or rec.get("format") != MARKER_FORMAT:
        raise InputError(f"unreadable {MARKER}: cannot tell which build this export belongs to", path=dest,
                         hint="choose another export folder, or delete this one and export again")
    return rec


def check_export_dest(dest: str | Path, build_id: str, manifest_sha256: str | None = None,
                      unit_names: set[str] | None = None, options: dict | None = None) -> None:
    """Refuse a destination that holds another build's export (its record names another build id,
    manifest or export options) or folders that no export of this build wrote. Callable before the
    build runs (with the build id alone), so a long build does not end in a refused export."""
    dest = Path(dest)
    if not dest.is_dir():
        return
    rec = read_marker(dest)
    if rec is not None and (rec.get("build_id") != build_id or
                            (manifest_sha256 is not None and rec.get("manifest_sha256") != manifest_sha256)):
        raise InputError(f"this folder holds the DEVC export of another build (build {rec.get('build_id')} "
                         f"from {rec.get('build')}); a second export would mix two builds", path=dest,
                         hint="choose another export folder, or delete this one and export again")
    if rec is not None and options is not None and rec.get("options", {}) != options:
        raise InputError(f"this folder holds this build's DEVC export made with other options "
                         f"({rec.get('options', {})}; now {options}); the two would mix", path=dest,
                         hint="rerun with the options of that export, or choose another folder")
    foreign = sorted(p.name for p in dest.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and (rec is None or (unit_names is not None and p.name not in unit_names)))
    if foreign:
        what = "folders that no export of this build wrote" if rec is not None else \
            f"folders but no {MARKER} (not an export of this build)"
        raise InputError(f"this folder holds {what} ({', '.join(foreign[:3])}"
                         f"{f' and {len(foreign) - 3} more' if len(foreign) > 3 else ''}); DEVC's loader would read "
                         "them as part of this dataset", path=dest,
                         hint="choose an empty folder for the export")


def build_identity(root: Path, kind: str) -> tuple[dict, Path]:
    """(build.json, manifest path) of a finished build; one-line errors for an unfinished one."""
    layout = BuildLayout(root)
    manifest = layout.manifest
    command = "build-pairs" if kind == "pairs" else "build-dataset"
    if not manifest.is_file():
        raise InputError("no manifest.parquet: the build is not complete", path=root,
                         hint=f"rerun the same {command} command first")
    try:
        record = json.loads(layout.build_json.read_text())
    except (OSError, ValueError):
        raise InputError("build.json is missing or unreadable, so the export cannot record which build it is",
                         path=root, hint=f"rerun the same {command} command first (it rewrites build.json)") from None
    return record, manifest


def run_export(root: Path, dest: Path, *, kind: str, record: dict, manifest: Path, units: list[str],
               write_unit: Callable[[str, Path, Placer], None], done_file: str, options: dict,
               count_key: str, link: bool = True, quiet: bool = False, prepare: Callable[[Placer], None] | None = None,
               desc: str = "export-devc") -> dict:
    """The export of one build into `dest`, unit (clip or class folder) by unit, under `dest`'s lock:
    a unit is written by `write_unit(name, tmp, placer)` in a private folder, renamed onto
    `dest/<name>` when complete, and skipped on a rerun when `dest/<name>/<done_file>` exists."""
    ident = {"format": MARKER_FORMAT, "kind": kind, "build_id": build_id(record), "manifest_sha256": sha256_file(manifest),
             "build": str(root.resolve()), count_key: len(units), "options": options}
    place = Placer(link)
    layout = DevcLayout(dest)
    written = 0
    with FolderLock(dest, "DEVC export"):
        check_export_dest(dest, ident["build_id"], ident["manifest_sha256"], set(units), options)
        sweep_private_dirs(dest)
        for p in dest.iterdir():  # the layout before private writers: `.<clip>.tmp`
            if p.is_dir() and p.name.startswith(".") and p.name.endswith(".tmp") and p.name[1:-4] in set(units):
                shutil.rmtree(p)
        if read_marker(dest) is None:
            atomic_write_text(layout.marker, json.dumps(ident, indent=1, sort_keys=True) + "\n")
        if prepare is not None:
            prepare(place)
        for name in tqdm(units, unit="clip" if kind == "clips" else "class", desc=desc, disable=quiet):
            target = layout.unit(name)
            if (target / done_file).is_file():
                continue
            work = PrivateDir(dest, name)
            try:
                write_unit(name, work.path, place)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(work.path, target)
            except BaseException:
                work.discard()
                raise
            work.release()
            written += 1
    return {"dir": str(dest), "kind": kind, count_key: len(units), "written": written, **place.stats(),
            "options": options}


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
        from vcbench.trainset.export_pairs import export_pairs

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
