"""What every benchmark set shares: the resolved `Benchmark`, the `BenchmarkSet` base each named set
subclasses, the content checksum and the exemplar lookup.

The checksum is the dataset's identity in every run: sha256 over one `name<TAB>size<TAB>sha256` line
per file (clips' frames in clip then frame order, then the exemplars by clip), plus a set's extra
lines (ImageNet's label list). Each file is read for hashing once: its digest is kept in
`Benchmark.file_digests`, and `Benchmark.clip_digest` builds the GT cache's content key from those
digests instead of reading the clip again.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vcbench.errors import InputError
from vcbench.frames import IMAGE_EXTENSIONS, Clip, natural_key, read_image
from vcbench.hashing import frames_digest, sha256_file, video_digest
from vcbench.registry import Spec

REFERENCE_MODES: tuple[str, ...] = ("first-frame", "exemplar")


# ------------------------------------------------------------------------------- the result
@dataclass
class Benchmark:
    """A resolved benchmark: GT clips, references, checksum and protocol (plain data, no pixels).

    `file_digests` holds the sha256 of every file the checksum covers (path -> hex digest), so the
    run never hashes a GT file a second time."""

    name: str
    clips: list[Clip]
    reference_mode: str
    checksum: str
    protocol: dict[str, Any]
    exemplars: dict[str, list[Path]] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    root: Path | None = None
    file_digests: dict[Path, str] = field(default_factory=dict)

    @property
    def n_clips(self) -> int:
        return len(self.clips)

    def references(self, clip: Clip, first_frame: np.ndarray | None = None) -> list[np.ndarray]:
        """Reference images (RGB uint8) of `clip` under this protocol. In first-frame mode pass the
        already decoded first frame as `first_frame` to avoid decoding it twice."""
        if self.reference_mode == "first-frame":
            if first_frame is None:
                first_frame = next(iter(clip.iter_frames()))
            return [np.ascontiguousarray(first_frame)]
        paths = self.exemplars.get(clip.name)
        if not paths:
            raise InputError(f"no exemplar image for clip {clip.name!r}", hint="add <clip>.png to the exemplar folder")
        return [read_image(p) for p in paths]

    def clip_digest(self, clip: Clip) -> str:
        """The GT cache's content key of `clip` (`hashing.frames_digest` of its frame files' digests,
        `hashing.video_digest` of a video file's), from the digests the checksum took: no file is read."""
        paths = clip_paths(clip)
        missing = [p for p in paths if p not in self.file_digests]
        if missing:
            raise InputError(f"clip {clip.name!r} has a file that benchmark {self.name!r} did not hash when it was "
                             "loaded", path=missing[0], hint="load the benchmark again (its files changed)")
        digests = [self.file_digests[p] for p in paths]
        return video_digest(digests[0]) if clip.kind == "video" else frames_digest(digests)


# ------------------------------------------------------------------------------- checksums
def clip_paths(clip: Clip) -> list[Path]:
    """The files a clip's content is: its frame files in frame order, or its video file."""
    return clip.frame_paths() if clip.kind == "frames" else [clip.path]


def content_checksum(entries: Iterable[tuple[str, Path]], extra: Sequence[str] = (),
                     digests: dict[Path, str] | None = None) -> str:
    """sha256 over "name<TAB>size<TAB>sha256" lines of every file (in the given order) plus `extra`
    lines: any changed, added, removed or reordered frame changes the dataset's identity.

    Each file's sha256 is put in `digests` (path -> hex), and a file already there is not read again."""
    known: dict[Path, str] = {} if digests is None else digests
    h = hashlib.sha256()
    for name, path in entries:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"cannot read benchmark file ({exc.strerror})", path=path) from exc
        digest = known.get(path)
        if digest is None:
            digest = known[path] = sha256_file(path)
        h.update(f"{name}\t{size}\t{digest}\n".encode("utf-8"))
    for line in extra:
        h.update(f"{line}\n".encode("utf-8"))
    return h.hexdigest()


def hashed_benchmark(name: str, clips: list[Clip], reference: str, protocol: dict[str, Any], *,
                     exemplars: dict[str, list[Path]], labels: dict[str, int] | None = None,
                     root: Path | None = None, extra: Sequence[str] = ()) -> Benchmark:
    """The `Benchmark` of these clips and exemplars, its checksum over their files (clips first, then
    the exemplars by clip name) and the per-file digests it took."""
    entries = [(f"{c.name}/{p.name}", p) for c in clips for p in clip_paths(c)]
    entries += [(f"exemplar:{clip}/{p.name}", p) for clip in sorted(exemplars, key=natural_key) for p in exemplars[clip]]
    digests: dict[Path, str] = {}
    checksum = content_checksum(entries, extra, digests)
    return Benchmark(name, clips, reference, checksum, protocol, exemplars, labels or {}, root, digests)


# -------------------------------------------------------------------------------- exemplars
def find_exemplars(folder: str | Path, clips: Sequence[Clip]) -> dict[str, list[Path]]:
    """`folder/<clip>.<image ext>` or `folder/<clip>/<images>` for every clip; missing ones are an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("exemplar folder not found", path=folder,
                         hint="pass --exemplars DIR holding <clip>.png (or <clip>/ with images) per clip")
    out: dict[str, list[Path]] = {}
    missing = []
    for c in clips:
        sub = folder / c.name
        if sub.is_dir():
            imgs = sorted((p for p in sub.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")),
                          key=lambda p: natural_key(p.name))
        else:
            imgs = [p for p in (folder / f"{c.name}{ext}" for ext in sorted(IMAGE_EXTENSIONS)) if p.is_file()][:1]
        if imgs:
            out[c.name] = imgs
        else:
            missing.append(c.name)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"no exemplar image for {len(missing)} clip(s): {shown}", path=folder,
                         hint="add <clip>.png (or a <clip>/ folder of images) for each clip")
    return out


def exemplar_origins(exemplars: Mapping[str, list[Path]]) -> dict[str, str]:
    """The protocol's record of given exemplars: each clip's first image path."""
    return {c: str(p[0]) for c, p in exemplars.items()}


def read_list(list_file: str) -> list[str]:
    """Non-empty lines of a list shipped in vcbench/data/."""
    text = resources.files("vcbench").joinpath("data", list_file).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------------------- the sets
@dataclass(frozen=True)
class BenchmarkSet(Spec, ABC):
    """A named benchmark set in `vcbench.benchmarks.BENCHMARKS`: its facts (shown by `vcbench datasets
    list`) and how to load it, say where it is, fetch it and rebuild it from a run's protocol."""

    description: str = ""
    kind: str = "video"  # "video" or "image"
    source: str = ""

    @abstractmethod
    def load(self, reference: str, exemplars: str | Path | None, *, data_root: str | Path | None,
             cache_dir: str | Path | None, options: Mapping[str, Any]) -> Benchmark:
        """The resolved set; `options` are its `--dataset-option` knobs, recorded in the protocol."""

    @abstractmethod
    def status(self, data_root: str | Path | None) -> tuple[bool, str]:
        """(available, where it is or what to do); cheap (no hashing). May raise InputError, which
        `benchmark_status` turns into (False, message)."""

    def fetch_hint(self) -> str:
        """How a user gets a set that vcbench does not download."""
        return f"get it from {self.source} and pass --data-root DIR"

    def download(self, data_root: str | Path | None, *, quiet: bool = False) -> Path:
        """Fetch the set into the data root and return its folder; sets vcbench cannot fetch refuse."""
        raise InputError(f"{self.name} cannot be downloaded by vcbench", hint=self.fetch_hint())

    def options_from_protocol(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        """The `options` that load the same set a run recorded in `protocol` (its `Benchmark.protocol`)."""
        return {}
