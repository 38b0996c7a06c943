"""Polite, resumable fetching for the remote sources.

The transfer itself (Range resume, retries with exponential backoff, atomic rename, sha256 check) is
`vcbench.download.download`; this module adds what a crawl over many links needs on top: a minimum
interval between requests to one host, a record of every file's checksum, and dead links turned
into `Failure` rows instead of a crash.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from vcbench.atomic import atomic_write_text
from vcbench.download import download
from vcbench.trainset.sources.base import Failure
from vcbench.errors import VcbenchError
from vcbench.hashing import sha256_file, update_from_file


class RateLimiter:
    """At least `min_interval_s` seconds between the starts of two requests to the same host."""

    def __init__(self, min_interval_s: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.min_interval_s = float(min_interval_s)
        self._clock, self._sleep = clock, sleep
        self._last: dict[str, float] = {}

    def wait(self, url: str) -> float:
        """Block until `url`'s host may be contacted again; return the seconds waited."""
        host = urlparse(url).netloc or url
        now = self._clock()
        last = self._last.get(host)
        waited = 0.0
        if last is not None and now - last < self.min_interval_s:
            waited = self.min_interval_s - (now - last)
            self._sleep(waited)
            now = self._clock()
        self._last[host] = now
        return waited


@dataclass(frozen=True)
class FetchItem:
    """One remote file: where from, where to, and the checksum published for it (if any)."""

    item: str
    url: str
    dest: Path
    sha256: str | None = None
    md5: str | None = None


class Fetcher:
    """Downloads `FetchItem`s one after another, rate-limited per host, logging dead links.

    `checksums.json` in the download folder records the sha256 of every file obtained, so a rerun
    skips what is already complete and a user can compare with a colleague's copy.
    """

    def __init__(self, download_dir: Path, *, min_interval_s: float = 1.0, retries: int = 5, quiet: bool = False,
                 limiter: RateLimiter | None = None):
        self.download_dir = Path(download_dir)
        self.retries = retries
        self.quiet = quiet
        self.limiter = limiter or RateLimiter(min_interval_s)
        self._record_path = self.download_dir / "checksums.json"
        self._record: dict[str, str] = {}
        if self._record_path.is_file():
            try:
                self._record = json.loads(self._record_path.read_text())
            except ValueError:
                self._record = {}

    def _save_record(self) -> None:
        atomic_write_text(self._record_path, json.dumps(dict(sorted(self._record.items())), indent=1) + "\n")

    def fetch(self, it: FetchItem) -> Path | Failure:
        """Return the local path, or a `Failure` saying why the file could not be had."""
        rel = str(it.dest.relative_to(self.download_dir)) if it.dest.is_relative_to(self.download_dir) else str(it.dest)
        if it.dest.is_file() and rel in self._record:
            if it.sha256 is None or self._record[rel] == it.sha256:
                return it.dest
        try:
            self.limiter.wait(it.url)
            download(it.url, it.dest, sha256=it.sha256, retries=self.retries)
        except VcbenchError as exc:
            return Failure(it.item, it.url, str(exc))
        except OSError as exc:  # network-level errors the downloader let through
            return Failure(it.item, it.url, f"{type(exc).__name__}: {exc}")
        if it.md5 is not None:
            md5 = hashlib.md5()
            update_from_file(md5, it.dest)
            got = md5.hexdigest()
            if got != it.md5:
                it.dest.unlink(missing_ok=True)
                return Failure(it.item, it.url, f"md5 {got} differs from the published {it.md5}; file removed")
        self._record[rel] = sha256_file(it.dest)
        self._save_record()
        return it.dest
