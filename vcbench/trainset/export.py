"""What every export of a build into a DEVC layout shares (`export_devc` for clips, `export_pairs` for
ImageNet pairs): the `Placer` that links or copies files, the export's record `vcbench-export.json`,
the one-build-per-folder check, and `run_export`, which writes unit by unit under the folder's lock.

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
from typing import Callable

from tqdm import tqdm

from vcbench.atomic import atomic_write_text, write_bytes, write_errors
from vcbench.errors import InputError
from vcbench.frames import read_image
from vcbench.hashing import sha256_file
from vcbench.lock import FolderLock, PrivateDir, sweep_private_dirs
from vcbench.trainset.config import build_id
from vcbench.trainset.layout import MARKER, BuildLayout, DevcLayout
from vcbench.trainset.shards import encode_image

MARKER_FORMAT = "vcbench-devc-export/1"


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
