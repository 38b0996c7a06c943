"""Write-then-rename helpers, so that an interrupted run never leaves a half-written file.

Temporary files and folders are created with the modes a plain `open`/`mkdir` would give (0666 and
0777 less the user's umask, applied by the kernel), not mkstemp's 0600, so a build in a shared
cluster folder or a report served by a web server is readable as the umask says.

A full disk (ENOSPC, a quota, numpy's or pyarrow's short-write errors, which hide the errno) becomes
one line naming the file being written, the bytes it needs and the space left.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from vcbench.errors import VcbenchError

#: What to do after a full disk; every such message ends with it.
DISK_FULL_HINT = "free space, then rerun the same command"
# numpy's tofile/np.save report a short fwrite as OSError("N requested and M written") with no errno.
_SHORT_WRITE_RE = re.compile(r"^(\d+) requested and (\d+) written$")
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_TEMP_ATTEMPTS = 100


def is_disk_full(exc: OSError) -> bool:
    """True for a full disk or quota, also where numpy or pyarrow hid the errno in the message."""
    if exc.errno in _DISK_FULL_ERRNOS:
        return True
    text = str(exc)
    # pyarrow raises OSError("... [errno 28] No space left on device") without setting errno.
    return bool(_SHORT_WRITE_RE.match(text)) or "No space left on device" in text or "Disk quota exceeded" in text


def _human(n: int) -> str:
    """`n` bytes exactly, with a readable size beside it from 1 KiB up."""
    size, unit = float(n), "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{n} bytes" if unit == "bytes" else f"{n} bytes ({size:.1f} {unit})"


def disk_full_error(path: str | Path, *, needed: int | None = None, written: int | None = None,
                    exc: OSError | None = None) -> VcbenchError:
    """The one line for a full disk: the file, the bytes it needs (exact when `needed` is known, else a
    lower bound from what was written before the disk filled) and the space left on its file system."""
    path = Path(path)
    match = _SHORT_WRITE_RE.match(str(exc)) if exc is not None else None
    if needed is not None:
        need = f"needs {_human(needed)}"
    elif match:
        need = f"needs at least {_human(int(match.group(1)))}"
    elif written:
        need = f"needs more than the {_human(written)} written before the disk filled"
    else:
        need = "needs more space than is left"
    where = next((p for p in (path, *path.parents) if p.exists()), None)
    try:
        free = f"; {_human(shutil.disk_usage(where).free)} free there" if where is not None else ""
    except OSError:
        free = ""
    return VcbenchError(f"no space left on device while writing ({need}{free})", path=path, hint=DISK_FULL_HINT)


def _os_error(exc: OSError, path: Path, *, needed: int | None = None, written: int | None = None) -> VcbenchError:
    """One line naming the target and the OS's reason, so an output-path mistake is not a traceback."""
    if is_disk_full(exc):
        return disk_full_error(path, needed=needed, written=written, exc=exc)
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


def _temp_name(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{os.urandom(4).hex()}{suffix}")


def _make_temp(path: Path, suffix: str) -> Path:
    """An empty temporary file beside `path` (its folders created), or a one-line VcbenchError.

    Created with mode 0666 so the kernel applies the umask (and any default ACL), as a plain open does.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(_TEMP_ATTEMPTS):
            tmp = _temp_name(path, suffix)
            try:
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            except FileExistsError:
                continue
            os.close(fd)
            return tmp
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))
    except OSError as exc:
        raise _os_error(exc, path) from exc


def make_temp_dir(final: str | Path) -> Path:
    """An empty temporary folder beside `final` (to be renamed onto it when complete), with the mode a
    plain mkdir gives (0777 less the umask), not mkdtemp's 0700."""
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(_TEMP_ATTEMPTS):
            tmp = _temp_name(final, ".tmp")
            try:
                tmp.mkdir(0o777)
            except FileExistsError:
                continue
            return tmp
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(final.parent))
    except OSError as exc:
        raise _os_error(exc, final) from exc


def _size(p: Path) -> int | None:
    try:
        return p.stat().st_size
    except OSError:
        return None


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None, size: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    Any OSError (creating the folder, the temporary file, writing, renaming) becomes a one-line
    `VcbenchError` naming `path` and the OS's reason; the temporary file never survives. `size`, the
    bytes the file will take when the caller knows it, makes a full-disk message exact.
    """
    path = Path(path)
    tmp_path = _make_temp(path, suffix or ".part")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        written = _size(tmp_path)
        tmp_path.unlink(missing_ok=True)
        # Only errors about the output itself: a read error on some input inside the block keeps its type.
        if is_disk_full(exc) or exc.filename is None or str(exc.filename) in (str(tmp_path), str(path)):
            raise _os_error(exc, path, needed=size, written=written) from exc
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def write_errors(path: str | Path, *, size: int | None = None) -> Iterator[None]:
    """Turn an OSError while writing `path` (not atomically: e.g. inside a temporary folder that is
    renamed when complete) into the same one line as `atomic_path`; the partial file is removed."""
    path = Path(path)
    try:
        yield
    except OSError as exc:
        written = _size(path)
        if is_disk_full(exc):  # a partial file; any other failure (no permission...) wrote nothing
            with contextlib.suppress(OSError):
                path.unlink()
        raise _os_error(exc, path, needed=size, written=written) from exc


def write_bytes(path: str | Path, data: bytes) -> None:
    """`Path.write_bytes` with `write_errors`: for files inside a temporary folder (no fsync, no rename)."""
    with write_errors(path, size=len(data)):
        Path(path).write_bytes(data)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path, size=len(data)) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


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
