"""Checked, resumable downloads and safe archive extraction.

Large files (weights of hundreds of MB, dataset archives of GBs) come over links that drop, so a
download continues from its `.part` file with an HTTP Range request, retries with exponential
backoff, checks its sha256 and only then renames onto the target: a target file is always complete
and verified. Archives are extracted only after every member has been checked to stay inside the
destination (no absolute paths, no `..`, no links pointing out).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shutil
import socket
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from vcbench.atomic import disk_full_error, is_disk_full
from vcbench.errors import DownloadError, InputError, VcbenchError
from vcbench.hashing import sha256_file
from vcbench.lock import same_file as _same_file

log = logging.getLogger(__name__)

OFFLINE_ENV = "VCBENCH_OFFLINE"
_CHUNK = 1 << 20
_USER_AGENT = "vcbench-downloader/1 (+https://github.com)"
# HTTP statuses that mean the link itself is wrong: retrying cannot help.
_DEAD_STATUSES = frozenset({400, 401, 403, 404, 410, 451})


def offline() -> bool:
    """True when the user forbade network access (VCBENCH_OFFLINE=1)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def _locked_part(part: Path) -> Iterator[None]:
    """Hold an exclusive lock on `part`, the file being downloaded, for the whole fetch.

    Two writers would interleave `.part`, so downloads of one file are serialised across processes;
    the lock is taken on the `.part` file itself, so no `.lock` file is left beside the target (in the
    torch hub cache, say). A fetch that got no byte removes its empty `.part` again, so a failed fetch
    leaves the folder as it was; a partial `.part` stays for the next run to resume.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    part.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(part, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, part):
            break
        os.close(fd)  # the holder finished (renamed it onto the target) or removed it: lock the current one
    try:
        yield
    finally:
        try:
            if _same_file(fd, part) and os.fstat(fd).st_size == 0:
                part.unlink()  # still holding the lock; a waiter re-checks the name and starts afresh
        finally:
            os.close(fd)  # releases the lock


def _check_digest(digest: str, sha256: str | None, sha256_prefix: str | None) -> str | None:
    """Return a description of the mismatch, or None when the digest is acceptable."""
    if sha256 and digest != sha256.lower():
        return f"sha256 {digest} differs from the expected {sha256.lower()}"
    if sha256_prefix and not digest.startswith(sha256_prefix.lower()):
        return f"sha256 {digest[:len(sha256_prefix)]}... differs from the expected prefix {sha256_prefix.lower()}"
    return None


def download(url: str, dest: str | Path, sha256: str | None = None, sha256_prefix: str | None = None,
             retries: int = 5, *, quiet: bool = False, timeout: float = 60.0, backoff: float = 1.0,
             sleep: Callable[[float], None] = time.sleep) -> Path:
    """Fetch `url` into `dest`, resuming `<dest>.part`; return `dest` once complete and checked
    (`download_with_digest` without the digest)."""
    return download_with_digest(url, dest, sha256, sha256_prefix, retries, quiet=quiet, timeout=timeout,
                                backoff=backoff, sleep=sleep)[0]


def download_with_digest(url: str, dest: str | Path, sha256: str | None = None, sha256_prefix: str | None = None,
                         retries: int = 5, *, quiet: bool = False, timeout: float = 60.0, backoff: float = 1.0,
                         sleep: Callable[[float], None] = time.sleep) -> tuple[Path, str]:
    """Fetch `url` into `dest`, resuming `<dest>.part`; return (`dest`, its sha256) once complete and
    checked. The digest is the one computed for the check, so callers recording it need not re-read the file.

    `retries` counts extra attempts after the first for transient failures (connection drops,
    timeouts, 5xx, 429); the wait doubles each time from `backoff` seconds. A dead link (404, 403,
    410...) fails at once. On a checksum mismatch the partial file is deleted and any existing
    `dest` is left as it was.
    """
    dest = Path(dest)
    if offline():
        raise DownloadError(f"offline mode ({OFFLINE_ENV}=1) forbids downloading {url}", path=dest,
                            hint=f"unset {OFFLINE_ENV} or place the file there yourself")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with _locked_part(part):
        if (sha256 or sha256_prefix) and dest.is_file():
            # Another process may have finished the same download while this one waited for the lock.
            digest = sha256_file(dest)
            if _check_digest(digest, sha256, sha256_prefix) is None:
                return dest, digest
        last_error: str = "no attempt made"
        for attempt in range(retries + 1):
            if attempt:
                wait = backoff * 2 ** (attempt - 1)
                log.info("retrying %s in %.1f s (%s)", url, wait, last_error)
                sleep(wait)
            try:
                complete = _fetch_once(url, part, timeout=timeout, quiet=quiet)
            except _DeadLink as exc:
                raise DownloadError(f"dead link: {url} answered HTTP {exc.status}", path=dest,
                                    hint="the file may have moved; download it by hand and place it there") from None
            except urllib.error.URLError as exc:
                if isinstance(getattr(exc, "reason", None), socket.gaierror):
                    # The host name does not resolve: this machine is offline (or the name is wrong).
                    # Retrying cannot help and would stall every run that lacks a weight file.
                    raise DownloadError(f"cannot reach {urllib.parse.urlsplit(url).hostname} to download {url} "
                                        f"(no network?)", path=dest,
                                        hint="download it on a machine with network access and place it there") from None
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            except (http.client.HTTPException, ConnectionError, TimeoutError, _Transient) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if not complete:
                last_error = "connection closed before the end of the file"
                continue
            digest = sha256_file(part)
            problem = _check_digest(digest, sha256, sha256_prefix)
            if problem:
                part.unlink(missing_ok=True)
                raise DownloadError(f"checksum mismatch for {url}: {problem}; the download was deleted", path=dest,
                                    hint="retry later; if it persists the file at that address has changed")
            os.replace(part, dest)
            return dest, digest
        raise DownloadError(f"download of {url} failed after {retries + 1} attempts ({last_error})", path=dest,
                            hint="check the network and rerun: the partial file is kept and the download resumes")


class _DeadLink(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Transient(Exception):
    """A failure worth retrying that urllib does not raise itself (e.g. HTTP 5xx)."""


def _fetch_once(url: str, part: Path, *, timeout: float, quiet: bool) -> bool:
    """One attempt: continue `part` from its size. True when the whole file has arrived."""
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            # Range beyond the end: what we have is either the whole file or garbage; start over
            # unless the server says the total equals what we hold.
            total = (exc.headers.get("Content-Range") or "").rpartition("/")[2]
            if total.isdigit() and int(total) == have:
                return True
            os.truncate(part, 0)  # not unlink: the lock is held on this file
            raise _Transient("server refused the resume range; restarting from zero") from None
        if exc.code in _DEAD_STATUSES:
            raise _DeadLink(exc.code) from None
        raise _Transient(f"HTTP {exc.code}") from None
    with resp:
        status = getattr(resp, "status", 200)
        if have and status == 200:
            have = 0  # the server ignored Range: it sends the whole file again
        elif have and status == 206:
            start = (resp.headers.get("Content-Range") or "").removeprefix("bytes ").partition("-")[0]
            if not start.isdigit() or int(start) != have:
                os.truncate(part, 0)
                raise _Transient(f"server resumed at byte {start or '?'} instead of {have}; restarting")
        mode = "ab" if have else "wb"
        length = resp.headers.get("Content-Length")
        expected = have + int(length) if length and length.isdigit() else None
        with open(part, mode) as fh, tqdm(total=expected, initial=have, unit="B", unit_scale=True,
                                          unit_divisor=1024, desc=part.name[:-5], disable=quiet,
                                          leave=False) as bar:
            got = have
            while True:
                block = resp.read(_CHUNK)
                if not block:
                    break
                fh.write(block)
                got += len(block)
                bar.update(len(block))
            fh.flush()
            os.fsync(fh.fileno())
    return expected is None or got >= expected


# ------------------------------------------------------------------------------------ extraction
def _safe_member(dest: Path, name: str, archive: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InputError(f"archive member {name!r} has an absolute path; refusing to extract", path=archive)
    if ".." in pure.parts:
        raise InputError(f"archive member {name!r} points outside the destination; refusing to extract",
                         path=archive)
    target = (dest / Path(*pure.parts)).resolve() if pure.parts else dest
    if target != dest and dest not in target.parents:
        raise InputError(f"archive member {name!r} resolves outside the destination; refusing to extract",
                         path=archive)
    return target


def _link_inside(dest: Path, member_path: Path, link_target: str) -> bool:
    if os.path.isabs(link_target):
        return False
    resolved = (member_path.parent / link_target).resolve()
    return resolved == dest or dest in resolved.parents


#: Limits on what an archive may write, overridable per call or by these environment variables. Real
#: dataset archives (DAVIS/Videvo zips of a few GB, Hollywood2's tarballs of ~15 GB) hold images and
#: videos, which compress little; a member that inflates more than 100:1 is a decompression bomb.
MAX_EXTRACT_ENV = "VCBENCH_MAX_EXTRACT_GB"
MAX_RATIO_ENV = "VCBENCH_MAX_EXTRACT_RATIO"
DEFAULT_MAX_EXTRACT_BYTES = 100 << 30
DEFAULT_MAX_RATIO = 100.0
# Below this a member's ratio is not checked: small text files (lists, annotations) compress well
# and cannot fill a disk; the total-size limit bounds many of them.
_RATIO_MIN_BYTES = 1 << 20
_MAX_LINK_BYTES = 4096


def _limit_from_env(name: str, default: float) -> float:
    """The positive number in environment variable `name`, else `default`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r} is not a number", hint=f"set {name} to a number, or unset it") from None
    if not value > 0:
        raise InputError(f"{name}={raw!r} must be positive", hint=f"set {name} to a positive number, or unset it")
    return value


def _check_sizes(archive: Path, dest: Path, sizes: list[tuple[str, int, int | None]], *,
                 max_total_bytes: int | None, max_ratio: float | None, whole_ratio: bool) -> None:
    """Refuse before writing anything: a total above the limit, a member (or, for a compressed tar,
    the whole stream: `whole_ratio`) inflating more than `max_ratio`:1, or more than the free space.
    `sizes` holds (member, uncompressed bytes, compressed bytes or None)."""
    limit = max_total_bytes if max_total_bytes is not None else int(
        _limit_from_env(MAX_EXTRACT_ENV, DEFAULT_MAX_EXTRACT_BYTES / (1 << 30)) * (1 << 30))
    ratio = max_ratio if max_ratio is not None else _limit_from_env(MAX_RATIO_ENV, DEFAULT_MAX_RATIO)
    total = sum(size for _, size, _ in sizes)
    if total > limit:
        raise InputError(f"archive would extract to {total} bytes, above the limit of {limit} bytes; refusing to "
                         "extract", path=archive,
                         hint=f"if the archive is trusted, raise the limit with {MAX_EXTRACT_ENV}=N (gigabytes)")
    packed = [(name, size, size / max(csize, 1)) for name, size, csize in sizes if csize is not None]
    if whole_ratio:
        packed = [("(the whole archive)", total, total / max(archive.stat().st_size, 1))]
    for name, size, r in packed:
        if size >= _RATIO_MIN_BYTES and r > ratio:
            raise InputError(f"archive member {name} would inflate {r:.0f}:1 ({size} bytes), above the "
                             f"{ratio:g}:1 limit (a decompression bomb?); refusing to extract", path=archive,
                             hint=f"if the archive is trusted, raise the limit with {MAX_RATIO_ENV}=N")
    try:
        free = shutil.disk_usage(dest).free
    except OSError:
        return
    if total > free:
        raise disk_full_error(dest, needed=total)


def _move_into(src: Path, dest: Path) -> None:
    """Move the tree `src` into `dest` by renames (same file system), merging with folders there."""
    for root, dirs, files in os.walk(src):
        here = Path(root)
        there = dest / here.relative_to(src)
        there.mkdir(exist_ok=True)
        for d in [d for d in dirs if (here / d).is_symlink()]:
            dirs.remove(d)
            files.append(d)
        for f in files:
            os.replace(here / f, there / f)


@contextlib.contextmanager
def _staging(archive: Path, dest: Path) -> Iterator[Path]:
    """A hidden folder in `dest` that the archive is extracted into, moved into `dest` only when the
    whole extraction succeeded: a failed or killed extraction leaves nothing half-written to be
    trusted (a rerun removes a killed one's folder)."""
    tmp = dest / f".{archive.name}.extracting"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        _move_into(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extraction_failed(exc: BaseException, archive: Path, dest: Path, kind: str) -> VcbenchError:
    if isinstance(exc, OSError) and is_disk_full(exc):
        return disk_full_error(dest, exc=exc)
    return InputError(f"corrupt {kind} archive ({exc})", path=archive, hint="delete it and download it again")


def safe_extract(archive: str | Path, dest: str | Path, *, max_total_bytes: int | None = None,
                 max_ratio: float | None = None) -> list[Path]:
    """Extract a zip or tar archive into `dest`, refusing any member that would land outside it.

    Every member is checked before anything is written, so a hostile archive leaves nothing behind:
    paths and links must stay inside `dest`, the total size must stay under `max_total_bytes`
    (default 100 GiB, or $VCBENCH_MAX_EXTRACT_GB) and the free space, and no member may inflate more
    than `max_ratio`:1 (default 100, or $VCBENCH_MAX_EXTRACT_RATIO; for a compressed tar, the whole
    stream). The files appear in `dest` only once all of them are extracted. Returns their paths.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    limits = {"max_total_bytes": max_total_bytes, "max_ratio": max_ratio}
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                target = _safe_member(dest, info.filename, archive)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    if info.file_size > _MAX_LINK_BYTES or not _link_inside(
                            dest, target, zf.read(info).decode("utf-8", "replace")):
                        raise InputError(f"archive member {info.filename!r} is a link out of the destination; "
                                         "refusing to extract", path=archive)
            _check_sizes(archive, dest, [(repr(i.filename), i.file_size, i.compress_size) for i in infos
                                         if not i.is_dir()], whole_ratio=False, **limits)
            try:
                with _staging(archive, dest) as tmp:
                    zf.extractall(tmp)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise _extraction_failed(exc, archive, dest, "zip") from exc
            return [dest / Path(*PurePosixPath(i.filename).parts) for i in infos if not i.is_dir()]
    try:
        tf = tarfile.open(archive)
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"not a readable zip or tar archive ({exc})", path=archive,
                         hint="delete it and download it again") from exc
    with tf:
        try:
            members = tf.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InputError(f"corrupt tar archive ({exc})", path=archive, hint="delete it and download it again") from exc
        for m in members:
            target = _safe_member(dest, m.name, archive)
            if m.issym() and not _link_inside(dest, target, m.linkname):
                raise InputError(f"archive member {m.name!r} is a link out of the destination; refusing to extract",
                                 path=archive)
            if m.islnk():
                _safe_member(dest, m.linkname, archive)
            if m.isdev():
                raise InputError(f"archive member {m.name!r} is a device file; refusing to extract", path=archive)
        compressed = getattr(tf, "fileobj", None) is not None and type(tf.fileobj).__module__ in ("gzip", "bz2", "lzma")
        _check_sizes(archive, dest, [(repr(m.name), m.size, None) for m in members if m.isfile()],
                     whole_ratio=compressed, **limits)
        try:
            # The "data" filter (Python >= 3.11.4) repeats these checks inside tarfile itself.
            with _staging(archive, dest) as tmp:
                tf.extractall(tmp, members=members, filter="data")
        except tarfile.FilterError as exc:
            raise InputError(f"unsafe archive member ({exc}); refusing to extract", path=archive) from exc
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _extraction_failed(exc, archive, dest, "tar") from exc
        return [dest / m.name for m in members if m.isfile()]
