"""Shard storage: one folder per shard of N clips, frames as files, flow as float16 arrays.

A shard is built under a temporary name (`.shard-00007.tmp`) and renamed to `shard-00007` when every
file is in place; its `shard-00007.stats.json` is written after the rename. So a shard counts as done
only when both exist, and anything else found at startup is removed and rebuilt.

Per clip: `frames/%05d.jpg` (JPEG quality 95, 4:4:4 chroma: colour is what these clips teach, so no
chroma subsampling; libjpeg-turbo via OpenCV, deterministic for a given build), or PNG (compression 3)
with `--frame-format png`; `flow_fw.npy` / `flow_bw.npy` (T-1, H, W, 2) float16, forward t->t+1 and
backward t+1->t; `mask/%05d.png` 255 where the pixel of frame t is visible in t+1 (Lai's test), else 0.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from vcbench.atomic import atomic_write_text, write_bytes

FRAME_FORMATS = ("jpg", "png")


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


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


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ShardWriter:
    """Writes one shard's files into its temporary folder and remembers every file's sha256."""

    def __init__(self, out_root: Path, index: int):
        self.out_root = Path(out_root)
        self.index = index
        self.final = self.out_root / "shards" / shard_name(index)
        self.tmp = self.out_root / "shards" / f".{shard_name(index)}.tmp"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)

    def _rel(self, *parts: str) -> str:
        return "/".join(("shards", shard_name(self.index), *parts))

    def _put(self, rel_in_shard: str, data: bytes) -> tuple[str, str]:
        path = self.tmp / rel_in_shard
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, data)
        return self._rel(rel_in_shard), sha256_bytes(data)

    def write_frames(self, clip_id: str, frames: np.ndarray, fmt: str) -> dict[str, str]:
        return dict(self._put(f"{clip_id}/frames/{t:05d}.{fmt}", encode_image(f, fmt)) for t, f in enumerate(frames))

    def write_flow(self, clip_id: str, fw: np.ndarray, bw: np.ndarray, valid: np.ndarray) -> dict[str, str]:
        files = dict([self._put(f"{clip_id}/flow_fw.npy", npy_bytes(fw.astype(np.float16))),
                      self._put(f"{clip_id}/flow_bw.npy", npy_bytes(bw.astype(np.float16)))])
        for t, m in enumerate(valid):
            files.update([self._put(f"{clip_id}/mask/{t:05d}.png", encode_image(np.where(m, 255, 0).astype(np.uint8), "png"))])
        return files

    def manifest_path(self) -> Path:
        return self.tmp / "manifest.parquet"

    def commit(self) -> Path:
        """Rename the finished temporary folder to its final name (replacing a stale one)."""
        if self.final.exists():
            shutil.rmtree(self.final)
        self.tmp.rename(self.final)
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def stats_path(out_root: Path, index: int) -> Path:
    return Path(out_root) / "shards" / f"{shard_name(index)}.stats.json"


def write_stats(out_root: Path, index: int, stats: dict) -> None:
    atomic_write_text(stats_path(out_root, index), json.dumps(stats, indent=1, sort_keys=True) + "\n")


def shard_complete(out_root: Path, index: int) -> bool:
    return (Path(out_root) / "shards" / shard_name(index)).is_dir() and stats_path(out_root, index).is_file()


def clean_incomplete(out_root: Path) -> list[str]:
    """Remove temporary shard folders and shard folders without a stats file; return their names."""
    shards = Path(out_root) / "shards"
    removed = []
    if not shards.is_dir():
        return removed
    for p in sorted(shards.iterdir()):
        if p.is_dir() and p.name.startswith(".") and p.name.endswith(".tmp"):
            shutil.rmtree(p)
            removed.append(p.name)
        elif p.is_dir() and p.name.startswith("shard-") and not (shards / f"{p.name}.stats.json").is_file():
            shutil.rmtree(p)
            removed.append(p.name)
        elif p.is_file() and p.name.startswith(".") and ".part" in p.name:
            p.unlink()
    return removed
