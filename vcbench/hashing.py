"""The one sha256-of-a-file in vcbench (weights, downloads, benchmark checksums all call it).

It imports only `vcbench.errors` and `vcbench.atomic` (neither imports it), so anything (download,
weights, benchmarks) can use it without import cycles. `sha256_file_cached` remembers digests across
runs by (path, size, mtime) in a cache folder; `vcbench.weights.sha256_file` uses it for the large
weight files, in the vcbench cache folder. `frames_digest` / `video_digest` turn file digests into the
GT cache's content key of a clip, so a file hashed for the benchmark checksum is not read again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

from vcbench.atomic import atomic_write_text
from vcbench.errors import VcbenchError

CHUNK = 1 << 20


def update_from_file(h: "hashlib._Hash", path: str | Path) -> None:
    """Feed a file's bytes into a running hash `h`, 1 MiB at a time (for digests over several files)."""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (constant memory for any size)."""
    h = hashlib.sha256()
    update_from_file(h, path)
    return h.hexdigest()


def frames_digest(hexdigests: Iterable[str]) -> str:
    """Content key of a frames clip from its frame files' hex sha256s, in frame order: sha256 of the
    tag `frames` and a zero byte, then the raw 32-byte digests. File names do not enter it (renamed
    frames keep the key); their order does. The bytes are those `metrics.gt_cache.clip_digest` has
    always hashed, so GT-cache entries of frame folders keep their keys."""
    h = hashlib.sha256(b"frames\0")
    for digest in hexdigests:
        h.update(bytes.fromhex(digest))
    return h.hexdigest()


def video_digest(hexdigest: str) -> str:
    """Content key of a video-file clip from the file's hex sha256: sha256 of the tag `video` and a
    zero byte, then the raw digest (another tag than frames', so a video never shares a folder's key)."""
    return hashlib.sha256(b"video\0" + bytes.fromhex(hexdigest)).hexdigest()


#: File in a cache folder holding {"<path>\t<size>\t<mtime_ns>": sha256} of files hashed before.
HASH_CACHE_FILE = "sha256-by-stat.json"


def sha256_file_cached(path: str | Path, cache_dir: str | Path | None) -> str:
    """`sha256_file`, remembered across runs in `cache_dir/HASH_CACHE_FILE` by (path, size, mtime_ns).

    Weight files are hundreds of MB (VGG19 548 MB: ~0.4-1 s to hash) and every scoring process used to
    hash each again. A file replaced or touched changes size or mtime, so it is hashed anew; an
    unreadable or damaged cache file, or an unwritable folder, only costs the hash. `cache_dir=None`
    hashes without remembering.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = f"{p}\t{st.st_size}\t{st.st_mtime_ns}"
    store = Path(cache_dir) / HASH_CACHE_FILE if cache_dir is not None else None
    known: dict[str, str] = {}
    if store is not None:
        try:
            known = json.loads(store.read_text(encoding="utf-8"))
            if not isinstance(known, dict):
                known = {}
        except (OSError, ValueError):
            known = {}
        digest = known.get(key)
        if isinstance(digest, str) and len(digest) == 64:
            return digest
    digest = sha256_file(p)
    if store is not None:
        stale = [k for k in known if k.split("\t", 1)[0] == str(p)]  # older versions of the same file
        for k in stale:
            known.pop(k)
        known[key] = digest
        try:
            atomic_write_text(store, json.dumps(known, indent=0, sort_keys=True))
        except (OSError, VcbenchError):
            pass
    return digest
