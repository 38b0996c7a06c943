"""A folder of clips as a benchmark (`--dataset DIR`): one sub-folder of frames or one video per clip.

A folder holding exactly the videos of one of Lai's sets (a local copy of davis30 or videvo20) ranks
under that set's name, with the same content checksum as the named set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from vcbench.benchmarks.base import Benchmark, exemplar_origins, find_exemplars, hashed_benchmark
from vcbench.benchmarks.lai import LAI_SETS
from vcbench.errors import InputError
from vcbench.frames import list_clips


def load_folder(path: Path, reference: str, exemplars: str | Path | None, options: Mapping[str, Any]) -> Benchmark:
    """The clips under `path`, named `folder:<folder name>` (or the Lai set whose videos they are)."""
    if options:
        raise InputError(f"a folder dataset takes no dataset options (got {', '.join(sorted(options))})")
    clips = list_clips(path)
    if reference == "exemplar" and exemplars is None:
        raise InputError("exemplar mode on a folder dataset needs --exemplars DIR (one image per clip)", path=path)
    ex = find_exemplars(exemplars, clips) if reference == "exemplar" else {}
    names = {c.name for c in clips}
    name = f"folder:{path.resolve().name}"
    for lai in LAI_SETS:  # a local copy of a named set ranks under its name
        if names == set(lai.videos()):
            name = lai.name
    protocol = {"dataset": name, "reference_mode": reference, "clips": len(clips), "source": str(path.resolve())}
    if ex:
        protocol["exemplars"] = exemplar_origins(ex)
    return hashed_benchmark(name, clips, reference, protocol, exemplars=ex, root=path)
