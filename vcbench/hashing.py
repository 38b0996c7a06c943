"""The one sha256-of-a-file in vcbench (weights, downloads, benchmark checksums all call it).

A leaf module with no vcbench imports, so anything (download, weights, datasets) can use it without
import cycles. `vcbench.weights.sha256_file` adds a per-(path, size, mtime) memo on top for the large
weight files that several components hash in one run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
