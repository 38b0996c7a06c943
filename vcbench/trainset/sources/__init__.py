"""Where build-dataset's raw videos come from.

Every source turns its options into a list of `SourceVideo`s (a local file plus the licence and
origin it came with) and a list of failures (dead links, bad checksums), which are logged and
skipped rather than fatal: stock-footage links rot, and one dead clip must not stop a 1000-clip build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vcbench.errors import InputError

SOURCE_NAMES: tuple[str, ...] = ("sample", "local", "videvo", "hollywood2", "hollywood3d")

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


def resolve_source(name: str, opts: SourceOptions) -> SourceResult:
    """Return the videos of source `name` (downloading what is missing) and the failures met."""
    if name == "sample":
        from vcbench.trainset.sources.sample import sample_source

        return sample_source(opts)
    if name == "local":
        from vcbench.trainset.sources.local import local_source

        return local_source(opts)
    if name == "videvo":
        from vcbench.trainset.sources.videvo import videvo_source

        return videvo_source(opts)
    if name in ("hollywood2", "hollywood3d"):
        from vcbench.trainset.sources.hollywood import hollywood_source

        return hollywood_source(name, opts)
    raise InputError(f"unknown source {name!r}", hint=f"choose one of {', '.join(SOURCE_NAMES)}")
