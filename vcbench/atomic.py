"""Write-then-rename helpers, so that an interrupted run never leaves a half-written file."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from vcbench.errors import VcbenchError


def _os_error(exc: OSError, path: Path) -> VcbenchError:
    """One line naming the target and the OS's reason, so an output-path mistake is not a traceback."""
    if exc.errno == errno.ENOSPC:
        return VcbenchError("no space left on device while writing", path=path,
                            hint="free some disk space or choose another output folder, then rerun")
    reason = exc.strerror or str(exc)
    other = Path(exc.filename) if exc.filename else None
    if other is not None and (other == path or (other.parent == path.parent and other.name.startswith(f".{path.name}."))):
        other = None  # the target itself or our temporary file beside it: the path already says where
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        blocker = other if other is not None and other.exists() else next(
            (p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None and not blocker.is_dir():
            return VcbenchError(f"cannot write: {blocker} is a file, not a folder", path=path,
                                hint="choose another output path")
    where = f" ({other})" if other is not None else ""
    return VcbenchError(f"cannot write: {reason}{where}", path=path,
                        hint="choose an output path in a folder you can write to")


def _make_temp(path: Path, suffix: str) -> Path:
    """An empty temporary file beside `path` (its folders created), or a one-line VcbenchError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _os_error(exc, path) from exc
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    Any OSError (creating the folder, the temporary file, writing, renaming) becomes a one-line
    `VcbenchError` naming `path` and the OS's reason; the temporary file never survives.
    """
    path = Path(path)
    tmp_path = _make_temp(path, suffix or ".part")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        # Only errors about the output itself: a read error on some input inside the block keeps its type.
        if exc.errno == errno.ENOSPC or exc.filename is None or str(exc.filename) in (str(tmp_path), str(path)):
            raise _os_error(exc, path) from exc
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; it replaces `path` on success only."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)



def check_writable(path: str | Path, *, folder: bool = False) -> None:
    """Fail early, before long work, when `path` (a file, or a folder with `folder=True`) cannot be
    written: create the missing folders and probe with a temporary file that is removed again (an
    existing target is left untouched)."""
    path = Path(path)
    if path.exists() and folder and not path.is_dir():
        raise VcbenchError("is not a folder", path=path, hint="give a folder path for the output")
    if path.is_dir() and not folder:
        raise VcbenchError("is a folder", path=path, hint="give a file name such as results.json")
    Path(_make_temp(path / ".vcbench-write-test" if folder else path, ".probe")).unlink()
