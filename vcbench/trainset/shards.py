"""Shard storage: one folder per shard of N clips, frames as files, flow as KITTI 16-bit PNGs.

A shard is built in its writer's own temporary folder (`.shard-00007.w<pid>-<random>.tmp`, see
`vcbench.lock.PrivateDir`), and renamed to `shard-00007` only when every file it recorded is there
with its sha256 (re-read from disk) and the run that started it still holds the build's lock; its
`shard-00007.stats.json` is written after the rename. So a shard counts as done only when both exist
and the stats name the manifest that is there; anything else found at startup is removed and rebuilt,
except the folders of writers that are still alive.

Per clip: `frames/%05d.jpg` (JPEG quality 95, 4:4:4 chroma: colour is what these clips teach, so no
chroma subsampling; libjpeg-turbo via OpenCV, deterministic for a given build), or PNG (compression 3)
with `--frame-format png`; `flow_fw/%05d.png` / `flow_bw/%05d.png` forward t->t+1 and backward t+1->t
as KITTI 16-bit flow PNGs (1/64 px grid, error <= 1/128 px within +-512 px; `vcbench.flow.flo`),
about 8x smaller than the float16 arrays stored before; `mask/%05d.png` 255 where the pixel of
frame t is visible in t+1 (Lai's test), else 0. The writer counts the bytes of each kind of file
(frames, flow, masks), which the stats report per clip.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from vcbench.atomic import atomic_write_text, write_bytes
from vcbench.errors import VcbenchError
from vcbench.flow.flo import decode_flow_png, encode_flow_png
from vcbench.hashing import sha256_file
from vcbench.lock import PrivateDir, check_owner, sweep_private_dirs
from vcbench.trainset.layout import (FLOW_BW_DIR, FLOW_FW_DIR, MASK_DIR, SHARD_MANIFEST, BuildLayout, ClipFiles,
                                     shard_name, stored_files_in)

FRAME_FORMATS = ("jpg", "png")


def encode_image(rgb: np.ndarray, fmt: str) -> bytes:
    """Deterministic encoding of an RGB uint8 image (or a 2-D uint8 mask for png/pgm)."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    if fmt == "jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
        ok, buf = cv2.imencode(".jpg", img, params)
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    elif fmt == "pgm":
        ok, buf = cv2.imencode(".pgm", img, [cv2.IMWRITE_PXM_BINARY, 1])
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {fmt} image")
    return buf.tobytes()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ShardWriter:
    """Writes one shard's files into this writer's private temporary folder, remembering every
    file's sha256, and commits the folder only when it checks out (`commit`)."""

    def __init__(self, out_root: Path, index: int, token: str | None = None):
        self.out_root = Path(out_root)
        self.layout = BuildLayout(out_root)
        self.index = index
        self.token = token
        self.final = self.layout.shard_dir(index)
        self._dir = PrivateDir(self.layout.shards, shard_name(index))
        self.tmp = self._dir.path
        self.files: dict[str, str] = {}  # path inside the shard -> sha256 of the bytes written
        self.bytes: dict[str, int] = {}  # kind of file -> bytes written

    def _rel(self, rel_in_shard: str) -> str:
        return self.layout.rel(self.final / rel_in_shard)

    def put(self, rel_in_shard: str, data: bytes, kind: str = "other") -> tuple[str, str]:
        """Write one file of the shard; returns (path relative to the build, sha256)."""
        path = self.tmp / rel_in_shard
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, data)
        digest = sha256_bytes(data)
        self.files[rel_in_shard] = digest
        self.bytes[kind] = self.bytes.get(kind, 0) + len(data)
        return self._rel(rel_in_shard), digest

    _put = put

    def write_frames(self, clip_id: str, frames: np.ndarray, fmt: str) -> dict[str, str]:
        names = ClipFiles(clip_id)
        return dict(self.put(names.frame(t, fmt), encode_image(f, fmt), "frames") for t, f in enumerate(frames))

    def write_flow(self, clip_id: str, fw: np.ndarray, bw: np.ndarray, valid: np.ndarray) -> dict[str, str]:
        names, files = ClipFiles(clip_id), {}
        for t in range(len(fw)):
            files.update([self.put(names.flow(t, "fw"), encode_flow_png(fw[t]), "flow"),
                          self.put(names.flow(t, "bw"), encode_flow_png(bw[t]), "flow")])
        for t, m in enumerate(valid):
            files.update([self.put(names.mask(t), encode_image(np.where(m, 255, 0).astype(np.uint8), "png"), "masks")])
        return files

    def manifest_path(self) -> Path:
        return self.tmp / SHARD_MANIFEST

    def verify(self, manifest_sha256: str) -> None:
        """Re-read the temporary folder: exactly the recorded files (and the manifest), each with its
        recorded sha256; otherwise a one-line error and no commit."""
        want = {**self.files, SHARD_MANIFEST: manifest_sha256}
        have = {p.relative_to(self.tmp).as_posix() for p in self.tmp.rglob("*") if p.is_file()}
        missing, extra = sorted(set(want) - have), sorted(have - set(want))
        bad = sorted(rel for rel in set(want) & have if sha256_file(self.tmp / rel) != want[rel])
        if missing or extra or bad:
            what = "; ".join(f"{k}: {', '.join(v[:3])}" for k, v in (("missing", missing), ("unexpected", extra),
                                                                      ("checksum mismatch", bad)) if v)
            raise VcbenchError(f"shard {self.index} failed its check before commit ({what})", path=self.tmp,
                               hint="rerun the same command to rebuild it")

    def commit(self, manifest_sha256: str) -> Path:
        """Verify, check that this run still owns the build, and rename the folder to its final name.
        A final folder that another writer of the same build committed meanwhile (a retried Ray task)
        holds the same bytes and is kept; one with another manifest (stale) is replaced."""
        self.verify(manifest_sha256)
        check_owner(self.out_root, self.token, f"shard {self.index}")
        if not self._dir.rename_to(self.final):
            final_manifest = self.final / SHARD_MANIFEST
            if final_manifest.is_file() and sha256_file(final_manifest) == manifest_sha256:
                self._dir.discard()
                return self.final
            old = PrivateDir(self.final.parent, f"{self.final.name}-replaced")
            os.replace(self.final, old.path)
            if not self._dir.rename_to(self.final):
                raise VcbenchError(f"shard {self.index} was written by two writers at once", path=self.final,
                                   hint="rerun the same command")
            old.discard()
        self._dir.release()
        return self.final

    def abort(self) -> None:
        self._dir.discard()


def clip_flow_files(flow_files: dict[str, str] | list[str], direction: str) -> list[str]:
    """The stored flow files of one clip in frame order; `direction` "fw" (t -> t+1) or "bw" (t+1 -> t)."""
    return stored_files_in(flow_files, FLOW_FW_DIR if direction == "fw" else FLOW_BW_DIR)


def clip_mask_files(flow_files: dict[str, str] | list[str]) -> list[str]:
    """The stored occlusion masks of one clip in frame order (255 = visible in the next frame)."""
    return stored_files_in(flow_files, MASK_DIR)


def read_stored_flow(root: Path, rel: str) -> np.ndarray:
    """(H, W, 2) float32 flow of one stored file (out-of-range pixels keep their saturated value)."""
    path = Path(root) / rel
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VcbenchError(f"cannot read stored flow ({exc.strerror})", path=path,
                           hint="run vcbench datasets verify on the build, then rerun the build command") from exc
    return decode_flow_png(data, path)[0]


def write_stats(out_root: Path, index: int, stats: dict) -> None:
    atomic_write_text(BuildLayout(out_root).shard_stats(index), json.dumps(stats, indent=1, sort_keys=True) + "\n")


def read_stats(out_root: Path, index: int) -> dict | None:
    """A shard's stats, or None when the file is missing or unreadable."""
    try:
        stats = json.loads(BuildLayout(out_root).shard_stats(index).read_text())
    except (OSError, ValueError):
        return None
    return stats if isinstance(stats, dict) else None


def shard_complete(out_root: Path, index: int) -> bool:
    """Folder and stats present, and the stats name the manifest that is in the folder."""
    manifest = BuildLayout(out_root).shard_manifest(index)
    stats = read_stats(out_root, index)
    return stats is not None and manifest.is_file() and stats.get("manifest_sha256") == sha256_file(manifest)


def clean_incomplete(out_root: Path) -> list[str]:
    """Remove what no complete shard owns: temporary folders of dead writers (live writers' folders
    stay), shard folders without matching stats, leftover temporary files; return their names."""
    shards = BuildLayout(out_root).shards
    removed = []
    if not shards.is_dir():
        return removed
    removed += sweep_private_dirs(shards)
    for p in sorted(shards.iterdir()):
        if p.is_dir() and p.name.startswith(".") and p.name.endswith(".tmp") and p.name.count(".") == 2:
            shutil.rmtree(p)  # a folder of the layout before private writers (`.shard-00007.tmp`)
            removed.append(p.name)
        elif p.is_dir() and BuildLayout.shard_index(p.name) is not None and \
                not shard_complete(out_root, BuildLayout.shard_index(p.name)):
            shutil.rmtree(p)
            removed.append(p.name)
        elif p.is_file() and p.name.startswith(".") and ".part" in p.name:
            p.unlink()
    return removed
