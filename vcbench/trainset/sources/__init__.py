"""Where build-dataset's raw videos come from: `SOURCES`, the registry of sources by name.

Every source turns its options into a list of `SourceVideo`s (a local file plus the licence and
origin it came with) and a list of failures (dead links, bad checksums), which are logged and
skipped rather than fatal: stock-footage links rot, and one dead clip must not stop a 1000-clip build.
A source is a function `SourceOptions -> SourceResult` (`vcbench.trainset.sources.base`), imported
only when a build asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from vcbench.errors import InputError, VcbenchError
from vcbench.registry import Registry, Spec
from vcbench.trainset.sources.base import SourceOptions, SourceResult


@dataclass(frozen=True)
class SourceSpec(Spec):
    """One build source: `target` names its function (SourceOptions -> SourceResult)."""


def _unknown(name: str, names: list[str]) -> VcbenchError:
    return InputError(f"unknown source {name!r}", hint=f"choose one of {', '.join(names)}")


SOURCES: Registry[SourceSpec] = Registry("source", SourceSpec, unknown=_unknown)
SOURCES["sample"] = "vcbench.trainset.sources.sample:sample_source"
SOURCES["local"] = "vcbench.trainset.sources.local:local_source"
SOURCES["videvo"] = "vcbench.trainset.sources.videvo:videvo_source"
SOURCES["hollywood2"] = "vcbench.trainset.sources.hollywood:hollywood2_source"
SOURCES["hollywood3d"] = "vcbench.trainset.sources.hollywood:hollywood3d_source"


def resolve_source(name: str, opts: SourceOptions) -> SourceResult:
    """Return the videos of source `name` (downloading what is missing) and the failures met."""
    return SOURCES.load(name)(opts)
