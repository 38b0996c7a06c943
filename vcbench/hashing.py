"""The one sha256-of-a-file in vcbench (weights, downloads, benchmark checksums all call it).

It imports only `vcbench.errors` and `vcbench.atomic` (neither imports it), so anything (download,
weights, benchmarks) can use it without import cycles. `sha256_file_cached` remembers digests across
runs by (path, size, mtime) in a cache folder; `vcbench.weights.sha256_file` uses it for the large
weight files, in the vcbench cache folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

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
