"""On-disk cache of GT-side work (flow + occlusion, Inception features, classifier labels).

Scoring a second model on the same benchmark set should pay only for its own frames: everything
computed from the GT alone is stored once, keyed by the GT clip's content (hashes of its files) and
by every protocol piece that changes the result (estimator and its parameters, the sha256 of the
weights, the resize policy, the protocol version). A changed frame or a different estimator gives a
different key, so a stale entry can never be read back.

Entries are plain `.npy` arrays written in order to a file with no name (O_TMPFILE; elsewhere a
locked `.part` beside the target) and renamed into place when complete (`ArrayWriter`), so an
interrupted or killed run leaves no entry that is ever read, and the next writer removes any dead
writer's `.part` (`sweep_parts`); reads use `mmap_mode="r"`, so a long clip's flow is paged in batch
by batch and memory stays flat. An entry of several arrays per row (the GT flow and its 0/1 mask) is
one record array, each field in its own dtype (`ArrayWriter.write_fields`), so its parts are
committed together and no part is stored wider than it is. Rows go to the file from the caller's
buffers and come out of the map with one copy into the tensor the metrics get (`rows_tensor`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from vcbench import PROTOCOL_VERSION
from vcbench.atomic import _os_error, atomic_path
from vcbench.hashing import frames_digest, sha256_file, video_digest

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """`$VCBENCH_CACHE_DIR`, else the platform's user cache folder for vcbench."""
    env = os.environ.get("VCBENCH_CACHE_DIR")
    if env:
        return Path(env)
    try:
        from platformdirs import user_cache_dir
    except ImportError:  # e.g. the GPU image: the XDG rule platformdirs follows on Linux
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vcbench"
    return Path(user_cache_dir("vcbench"))


def clip_digest(clip: Any) -> str:
    """The content key of a clip, from its files' sha256: `hashing.video_digest` of a video file's,
    `hashing.frames_digest` of its frame files' in frame order (file names do not enter it, so renamed
    frames keep the entry; their order does). A benchmark that hashed the files for its checksum gives
    the same key without reading them again (`Benchmark.clip_digest`, which `vcbench evaluate` uses)."""
    if clip.kind == "video":
        return video_digest(sha256_file(clip.path))
    return frames_digest(sha256_file(p) for p in clip.frame_paths())


def entry_key(kind: str, digest: str, parts: dict[str, Any]) -> str:
    """Key of one cache entry: the GT content digest plus the protocol pieces that affect `kind`."""
    payload = json.dumps({"kind": kind, "gt": digest, "protocol": PROTOCOL_VERSION, "parts": parts},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:40]


#: Suffix of a named temporary cache entry (platforms without O_TMPFILE, and the moment of commit).
PART_SUFFIX = ".npy.part"


def _lock(fh: BinaryIO) -> None:
    """An exclusive advisory lock held while the entry is written: the kernel drops it when the writer
    dies, which is how `sweep_parts` tells a live writer's temporary file from a dead one's."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: the sweep then goes by age alone
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _is_dead(path: Path) -> bool:
    """True when nobody holds `path`'s writer lock (or, without fcntl, when it is a day old)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        import time

        return time.time() - path.stat().st_mtime > 86400
    with open(path, "rb") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


def sweep_parts(folder: Path) -> int:
    """Remove the temporary entries under `folder` whose writer is gone (killed, or a crashed older
    version); returns how many. Entries being written by a live process are left alone."""
    removed = 0
    for part in folder.glob(f"*{PART_SUFFIX}"):
        with contextlib.suppress(OSError):
            if _is_dead(part):
                part.unlink()
                removed += 1
    return removed


def _anonymous_file(folder: Path) -> BinaryIO | None:
    """A file in `folder` with no name (Linux O_TMPFILE): a writer killed at any point leaves nothing.
    None where the platform or file system has no such files."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or os.link not in os.supports_dir_fd or not os.path.isdir("/proc/self/fd"):
        return None  # naming it later is linkat() of /proc/self/fd/N
    try:
        fd = os.open(folder, flag | os.O_WRONLY, 0o666)
    except OSError:  # EOPNOTSUPP / EISDIR / EINVAL: this file system cannot
        return None
    return os.fdopen(fd, "wb")


class ArrayWriter:
    """Stream an array to `.npy` along axis 0 (shape known up front), committed by rename on success.

    The data go to a file with no name where the platform has them (O_TMPFILE), given its name only
    when complete; elsewhere to a locked `<name>.<random>.npy.part` beside the target. So a writer
    killed mid-entry leaves either nothing or a `.part` that no reader opens and the next writer in
    that folder removes (`sweep_parts`); a failed write (full disk) removes its own file.
    Plain file writes rather than a memory map: a full disk then raises ENOSPC (turned into a clear
    error by `vcbench.atomic`) instead of killing the process with SIGBUS.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype | str):
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        if self.dtype.names and not _packed(self.dtype):
            raise ValueError(f"record dtype {self.dtype} has padding: its fields cannot be written back to back")
        self._rows = 0
        self._stack = contextlib.ExitStack()
        fh = _anonymous_file(self.path.parent)
        if fh is not None:
            self._fh: BinaryIO = self._stack.enter_context(fh)
            _lock(self._fh)  # also guards the moment it has a temporary name (commit)
            self._named = False
        else:
            tmp = self._stack.enter_context(atomic_path(self.path, suffix=PART_SUFFIX))
            self._fh = self._stack.enter_context(open(tmp, "wb"))
            _lock(self._fh)
            self._named = True
        self._guard(lambda: np.lib.format.write_array_header_1_0(
            self._fh, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}))

    def _guard(self, fn: Any) -> None:
        try:
            fn()
        except OSError as exc:
            # Drop the partial file; atomic_path turns ENOSPC into a clear error naming the entry.
            if self._named:
                if not self._stack.__exit__(type(exc), exc, exc.__traceback__):
                    raise
                return
            self._stack.close()
            raise _os_error(exc, self.path) from exc

    def _fits(self, k: int, shape: tuple[int, ...], want: tuple[int, ...]) -> None:
        if shape != want or self._rows + k > self.shape[0]:
            raise ValueError(f"rows {shape} do not fit the cache entry {self.shape} of {self.dtype} "
                             f"at row {self._rows}")

    def write(self, rows: np.ndarray) -> None:
        """Append rows (k, *shape[1:]), written from the array's own buffer (copied only when it is
        not C-contiguous or not of the entry's dtype)."""
        if self.dtype.names:
            raise TypeError(f"cache entry {self.path.name} is a record array: pass its fields to write_fields")
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        self._fits(rows.shape[0], rows.shape, (rows.shape[0], *self.shape[1:]))
        self._guard(lambda: self._fh.write(rows))
        self._rows += rows.shape[0]

    def write_fields(self, *parts: np.ndarray) -> None:
        """Append k rows of a record-array entry given as one array per field, in field order (field
        f's array is (k, *f's shape) in f's dtype): each row's fields go to the file one after the
        other from those arrays' buffers, so the interleaved records are never built in memory."""
        names = self.dtype.names
        if not names or len(parts) != len(names):
            raise TypeError(f"cache entry {self.path.name} takes {len(names or ())} field arrays, got {len(parts)}")
        fields = [self.dtype.fields[name][0] for name in names]
        arrays = [np.ascontiguousarray(p, dtype=f.base) for p, f in zip(parts, fields)]
        k = arrays[0].shape[0]
        self._fits(k, tuple(tuple(a.shape) for a in arrays), tuple((k, *f.shape) for f in fields))

        def rows() -> None:
            for i in range(k):
                for a in arrays:
                    self._fh.write(a[i])

        self._guard(rows)
        self._rows += k

    def commit(self) -> None:
        if self._rows != self.shape[0]:
            self.abort()
            raise ValueError(f"cache entry got {self._rows} of {self.shape[0]} rows")
        if self._named:
            self._fh.flush()
            self._stack.close()  # closes the file, then renames it onto the target
            return
        self._guard(self._fh.flush)
        # Name the anonymous file under a locked temporary name, then rename it onto the target.
        with atomic_path(self.path, suffix=PART_SUFFIX) as tmp:
            tmp.unlink(missing_ok=True)
            # a dir fd makes os.link call linkat(AT_SYMLINK_FOLLOW); plain link() would not follow /proc's link
            folder = os.open(tmp.parent, os.O_RDONLY)
            try:
                os.link(f"/proc/self/fd/{self._fh.fileno()}", tmp, src_dir_fd=folder, follow_symlinks=True)
            finally:
                os.close(folder)
        self._stack.close()

    def abort(self) -> None:
        """Drop the partial entry (an anonymous file vanishes with its descriptor; a named one is removed)."""
        with contextlib.suppress(_Abort):
            self._stack.__exit__(_Abort, _Abort(), None)


class _Abort(Exception):
    pass


def _packed(dtype: np.dtype) -> bool:
    """Whether a record dtype's fields lie back to back in field order, with nothing after the last."""
    offset = 0
    for name in dtype.names or ():
        field, at = dtype.fields[name][:2]
        if at != offset:
            return False
        offset += field.itemsize
    return offset == dtype.itemsize


def rows_tensor(rows: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A new CPU tensor holding `rows` (e.g. a slice or a field of a memory-mapped entry), converted to
    `dtype` (default: the rows' own) on the way: the one copy out of the map (torch.from_numpy cannot
    take a read-only map without a warning, and copying to an array first would copy twice)."""
    if dtype is None:
        dtype = torch.from_numpy(np.empty(0, rows.dtype)).dtype
    out = torch.empty(rows.shape, dtype=dtype)
    np.copyto(out.numpy(), rows, casting="safe")
    return out


class GTCache:
    """GT-side results on disk under `root/<kind>/<key>.npy`; `enabled=False` makes every lookup miss."""

    def __init__(self, root: str | Path | None = None, *, enabled: bool = True):
        self.enabled = enabled
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self._swept: set[str] = set()

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.npy"

    def load(self, kind: str, key: str, shape0: int | None = None) -> np.ndarray | None:
        """The cached array (memory-mapped, read-only) or None; a damaged entry counts as a miss."""
        if not self.enabled:
            return None
        p = self.path(kind, key)
        if not p.is_file():
            self.misses += 1
            return None
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("ignoring damaged cache entry %s (%s)", p, exc)
            self.misses += 1
            return None
        if shape0 is not None and arr.shape[0] != shape0:
            log.warning("ignoring cache entry %s with %d rows (expected %d)", p, arr.shape[0], shape0)
            self.misses += 1
            return None
        self.hits += 1
        return arr

    def load_as(self, kind: str, key: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray | None:
        """`load`, and the entry must have exactly this dtype and shape (a miss otherwise): a reader
        never takes an array of another layout for its own, whatever sits under the key."""
        arr = self.load(kind, key, shape[0])
        if arr is None:
            return None
        if arr.dtype != np.dtype(dtype) or arr.shape != tuple(shape):
            log.warning("ignoring cache entry %s: %s %s, expected %s %s", self.path(kind, key), arr.dtype,
                        arr.shape, np.dtype(dtype), tuple(shape))
            self.hits -= 1
            self.misses += 1
            return None
        return arr

    def writer(self, kind: str, key: str, shape: tuple[int, ...], dtype: np.dtype | str) -> ArrayWriter | None:
        """A streaming writer for a new entry, or None when caching is off or the folder is unusable."""
        if not self.enabled:
            return None
        try:
            folder = self.root / kind
            folder.mkdir(parents=True, exist_ok=True)
            if kind not in self._swept:
                self._swept.add(kind)
                sweep_parts(folder)
            return ArrayWriter(self.path(kind, key), shape, dtype)
        except OSError as exc:
            log.warning("GT cache disabled: cannot write under %s (%s)", self.root, exc)
            self.enabled = False
            return None
