"""What every build source gives: `SourceVideo`s (a local file plus the licence and origin it came
with) and `Failure`s (dead links, bad checksums), from the `SourceOptions` a build passes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SourceVideo:
    """One raw video: a local file plus where it came from and under which licence."""

    video_id: str
    path: Path
    source: str
    licence: str
    origin: str
    label: str = ""


@dataclass(frozen=True)
class Failure:
    """A video or archive that could not be obtained, and why (logged, then skipped)."""

    item: str
    url: str
    reason: str

    def as_dict(self) -> dict:
        return {"item": self.item, "url": self.url, "reason": self.reason}


@dataclass(frozen=True)
class SourceOptions:
    """What a source may need: a local folder (`--input`), a URL list (`--urls`), where downloads go,
    and the politeness settings for remote hosts."""

    download_dir: Path
    input: Path | None = None
    urls: Path | None = None
    min_interval_s: float = 1.0
    retries: int = 5
    quiet: bool = False


@dataclass
class SourceResult:
    videos: list[SourceVideo] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
