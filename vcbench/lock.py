"""Who may write where: one exclusive lock per output folder, and private temporary folders per writer.

A build (or an export) holds `FolderLock` on its output folder for its whole run: an advisory
`flock` on `<folder>/.vcbench.lock`, which the kernel releases when the holder dies however it
dies (kill -9 included), so a stale lock is simply taken over. The file names the holder (pid, host,
start time) for the one-line refusal a second run gets, and a random token: a worker checks
`holder_alive(folder, token)` right before it commits, so workers orphaned by a killed main process
(a local pool whose parent died, a Ray task of a dead driver) can no longer commit anything.

Every writer fills its own temporary folder, `.<label>.w<pid>-<random>.tmp`, beside a lock file of
the same name ending in `.lock` that it holds while it lives. `sweep_private_dirs` removes only the
folders whose writer is dead, so a cleanup never deletes files that a live process is still writing.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

from vcbench.errors import VcbenchError

LOCK_NAME = ".vcbench.lock"
_PRIVATE_RE = re.compile(r"^\.(?P<label>.+)\.(?P<id>w\d+-[0-9a-f]{8})\.(?P<kind>tmp|lock)$")
#: atomic.py's temporary files: `.<name>.<8 random characters><suffix>` (mkstemp's alphabet).
_ATOMIC_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.[A-Za-z0-9]+$")


def same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd` (it may have been unlinked, renamed or recreated)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def read_holder(folder: str | Path) -> dict:
    """What the lock file of `folder` says about its holder ({} when absent or unreadable)."""
    try:
        rec = json.loads((Path(folder) / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


class FolderLock:
    """Exclusive lock on an output folder for one run (`with FolderLock(out, "build") as lock:`).

    The folder is created if missing (and removed again on release when the run left it empty).
    A folder locked by a live process raises a one-line `VcbenchError` naming that process; a lock
    left by a dead one is taken over. Waits up to `wait_s` first: workers take the lock shared for an
    instant when they check `holder_alive`."""

    def __init__(self, folder: str | Path, what: str = "build", *, wait_s: float = 2.0):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self.wait_s = wait_s
        self.token = secrets.token_hex(16)
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> "FolderLock":
        if not self.folder.is_dir():
            try:
                self.folder.mkdir(parents=True)
                self._created = True
            except FileExistsError:
                pass
            except OSError as exc:
                raise VcbenchError(f"cannot create the output folder ({exc.strerror or exc})", path=self.folder,
                                   hint="choose an output folder you can write to") from exc
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise VcbenchError(f"cannot create the lock file ({exc.strerror or exc})", path=self.path,
                                   hint="choose an output folder you can write to") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise VcbenchError(f"cannot lock the output folder ({exc.strerror or exc})", path=self.folder,
                                       hint="use a local or NFSv4 folder that supports file locks") from exc
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise self._busy_error() from None
            if not same_file(fd, self.path):  # the previous holder unlinked it as we opened it: retry
                os.close(fd)
                continue
            break
        info = {"pid": os.getpid(), "host": socket.gethostname(), "what": self.what, "token": self.token,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info, sort_keys=True) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def _busy_error(self) -> VcbenchError:
        h = read_holder(self.folder)
        who = (f"pid {h.get('pid', '?')} on host {h.get('host', '?')}, started {h.get('started', '?')}" if h
               else "a process that has not written its name yet")
        return VcbenchError(f"another vcbench {h.get('what', self.what)} is writing to this folder ({who})",
                            path=self.folder,
                            hint="wait for it to finish, or choose another folder; a lock left by a process that "
                                 "died is taken over by the next run")

    def release(self) -> None:
        """Remove the lock file, then drop the lock; a folder this run created and left empty goes too."""
        if self._fd is None:
            return
        try:
            if same_file(self._fd, self.path):
                self.path.unlink()
        finally:
            os.close(self._fd)
            self._fd = None
        if self._created:
            try:
                self.folder.rmdir()
            except OSError:
                pass

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder_alive(folder: str | Path, token: str) -> bool:
    """True when the run that issued `token` still holds the lock on `folder`: the lock is held by
    somebody (a shared lock cannot be had) and the file carries that token. Workers call it right
    before they commit, so the workers of a dead run (and of one whose lock was taken over) cannot."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
        else:  # nobody holds it exclusively: its run is over
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        data = os.pread(fd, 4096, 0)
    finally:
        os.close(fd)
    try:
        return json.loads(data).get("token") == token
    except (ValueError, AttributeError):
        return False


class OwnerLost(VcbenchError):
    """Raised in a worker whose run no longer holds the output lock: it must not commit."""


def check_owner(folder: str | Path, token: str | None, what: str) -> None:
    """Raise `OwnerLost` unless the run with `token` still holds `folder`'s lock (None: no check)."""
    if token is not None and not holder_alive(folder, token):
        raise OwnerLost(f"{what} not committed: the run that started it no longer holds the folder's lock",
                        path=folder, hint="rerun the same command to resume")


# ------------------------------------------------------------------------------ private folders
class PrivateDir:
    """A temporary folder that only this writer uses, marked live by a lock file beside it."""

    def __init__(self, parent: str | Path, label: str):
        self.parent = Path(parent)
        self.parent.mkdir(parents=True, exist_ok=True)
        while True:
            ident = f"w{os.getpid()}-{secrets.token_hex(4)}"
            lock = self.parent / f".{label}.{ident}.lock"
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            if same_file(fd, lock):  # a sweeper may have judged it stale before we locked it
                break
            os.close(fd)
        self.lock_path = lock
        self.path = self.parent / f".{label}.{ident}.tmp"
        self._fd: int | None = fd
        self.path.mkdir()

    def rename_to(self, final: Path) -> bool:
        """Rename the folder to `final`; False (and the folder kept) when `final` already exists."""
        try:
            os.rename(self.path, final)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) or (exc.errno == errno.ENOTDIR and final.exists()):
                return False
            raise
        return True

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()

    def release(self) -> None:
        """Drop the live mark (after the folder was renamed or removed)."""
        if self._fd is None:
            return
        try:
            self.lock_path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def sweep_private_dirs(parent: str | Path) -> list[str]:
    """Remove the private folders in `parent` whose writer is dead; returns their names. A folder
    whose lock file is held (its writer lives) is left alone."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    removed = []
    entries = sorted(os.listdir(parent))
    for name in entries:
        m = _PRIVATE_RE.match(name)
        if not m or m["kind"] != "lock":
            continue
        lock = parent / name
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its writer is alive
            tmp = parent / f".{m['label']}.{m['id']}.tmp"
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp.name)
            if same_file(fd, lock):
                lock.unlink()
        finally:
            os.close(fd)
    for name in entries:  # folders whose lock file is gone: their writer died between the two steps
        m = _PRIVATE_RE.match(name)
        if m and m["kind"] == "tmp" and not (parent / f".{m['label']}.{m['id']}.lock").exists():
            if (parent / name).exists():
                shutil.rmtree(parent / name, ignore_errors=True)
                removed.append(name)
    return removed


def live_private_dirs(parent: str | Path) -> list[str]:
    """Names of the private folders in `parent` whose writer is still alive."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    live = []
    for name in sorted(os.listdir(parent)):
        m = _PRIVATE_RE.match(name)
        if not m or m["kind"] != "lock":
            continue
        try:
            fd = os.open(parent / name, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            live.append(f".{m['label']}.{m['id']}.tmp")
        finally:
            os.close(fd)
    return live


def sweep_atomic_leftovers(folder: str | Path, *, recursive: bool = False) -> list[str]:
    """Remove the temporary files that `vcbench.atomic` writes (`.<name>.<random><suffix>`) and a
    kill left behind. Only for folders that the caller alone writes (it holds their FolderLock)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    paths = folder.rglob(".*") if recursive else folder.glob(".*")
    for p in sorted(paths):
        if p.name != LOCK_NAME and _ATOMIC_RE.match(p.name) and not _PRIVATE_RE.match(p.name) and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(str(p.relative_to(folder)))
    return removed
