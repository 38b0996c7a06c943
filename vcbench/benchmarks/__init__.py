"""Benchmark sets by name (`sample`, `davis30`, `videvo20`, `imagenet-ctest10k`) or a folder of clips.

A benchmark is what `vcbench evaluate` needs to make a run comparable: the GT clips (`vcbench.frames.Clip`,
decoded lazily), the reference image(s) for each clip, a checksum of the exact files, and the protocol
(which reference mode, which frames). Reference choice is part of the protocol:

- `first-frame` (propagation mode, the default): the clip's first GT frame in colour is the reference;
- `exemplar`: a given image per clip (`--exemplars DIR` holding `<clip>.png|jpg` or `<clip>/<images>`);
  the bundled `sample` uses scikit-image colour stills, listed in sample.py's `SAMPLE_EXEMPLARS`.

The licensed sets are never shipped: the lists of their test videos/images are (vcbench/data/), and
the user downloads the data from the official source or points vcbench at a local copy with
`--data-root DIR` or an environment variable. Missing data is one error naming what to download, from
where, and how to point vcbench at it.

Each named set is one `BenchmarkSet` in `BENCHMARKS` (sample.py, lai.py: davis30 and videvo20,
imagenet.py); a path is a folder of clips (folder.py). The functions below dispatch through the set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from vcbench.benchmarks.base import REFERENCE_MODES, Benchmark, BenchmarkSet
from vcbench.benchmarks.folder import load_folder
from vcbench.benchmarks.imagenet import IMAGENET_CTEST10K, imagenet_entries
from vcbench.benchmarks.lai import DAVIS30, VIDEVO20
from vcbench.benchmarks.sample import SAMPLE
from vcbench.errors import InputError
from vcbench.registry import Registry

__all__ = ["BENCHMARKS", "Benchmark", "BenchmarkSet", "REFERENCE_MODES", "benchmark_from_protocol",
           "benchmark_status", "download_benchmark", "imagenet_entries", "load_benchmark"]


def _unknown(name: str, names: list[str]) -> InputError:
    return InputError(f"unknown benchmark {name!r}; valid: {', '.join(names)}")


#: The named sets, in the order `vcbench datasets list` shows them.
BENCHMARKS: Registry[BenchmarkSet] = Registry("benchmark", BenchmarkSet, unknown=_unknown)
BENCHMARKS.add(SAMPLE)
BENCHMARKS.add(DAVIS30)
BENCHMARKS.add(VIDEVO20)
BENCHMARKS.add(IMAGENET_CTEST10K)


def load_benchmark(name_or_path: str | Path, *, reference: str = "first-frame", exemplars: str | Path | None = None,
                   data_root: str | Path | None = None, cache_dir: str | Path | None = None,
                   options: Mapping[str, Any] | None = None) -> Benchmark:
    """Resolve a benchmark by name (see `BENCHMARKS`) or a folder of clips, checking its files.

    `options` are per-set knobs recorded in the protocol: for `sample` frames (24), width (256) and
    clips; for `imagenet-ctest10k` limit (the first N images of the list).
    """
    if reference not in REFERENCE_MODES:
        raise InputError(f"unknown reference mode {reference!r}; valid: {', '.join(REFERENCE_MODES)}")
    options = dict(options or {})
    name = str(name_or_path)
    if name in BENCHMARKS:
        return BENCHMARKS[name].load(reference, exemplars, data_root=data_root, cache_dir=cache_dir, options=options)
    path = Path(name_or_path)
    if path.is_dir():
        return load_folder(path, reference, exemplars, options)
    raise InputError(f"unknown dataset {name!r}: not a benchmark name ({', '.join(BENCHMARKS)}) "
                     "and not a folder of clips", hint="see `vcbench datasets list`")


def benchmark_status(name: str, data_root: str | Path | None = None) -> tuple[bool, str]:
    """(available, where it is or what to do) for `vcbench datasets list`; cheap (no hashing)."""
    bench_set = BENCHMARKS.spec(name)
    try:
        return bench_set.status(data_root)
    except InputError as exc:
        return False, str(exc)


def download_benchmark(name: str, data_root: str | Path | None = None, *, quiet: bool = False) -> Path:
    """Fetch a named set into the data root (davis30 and videvo20: Lai et al.'s test zip) and return its
    folder; a set vcbench cannot fetch is refused with where to get it."""
    return BENCHMARKS.spec(name).download(data_root, quiet=quiet)


def benchmark_from_protocol(protocol: Mapping[str, Any], *, data_root: str | Path | None = None,
                            cache_dir: str | Path | None = None) -> Benchmark:
    """The benchmark a recorded run used, rebuilt from its `Benchmark.protocol` (stored by `vcbench
    evaluate` in the run's identity as `dataset_protocol`): the same sample size and clips, the same
    reference mode, so reports can show the exact GT frames the run was scored on."""
    name = str(protocol.get("dataset", ""))
    reference = str(protocol.get("reference_mode", "first-frame"))
    exemplars = protocol.get("exemplars") or {}
    folder = None
    if exemplars and not all(str(v).startswith("skimage:") for v in exemplars.values()):
        folder = Path(str(next(iter(exemplars.values())))).parent
    if name in BENCHMARKS:
        return load_benchmark(name, reference=reference, exemplars=folder, data_root=data_root, cache_dir=cache_dir,
                              options=BENCHMARKS[name].options_from_protocol(protocol))
    source = protocol.get("source")
    if source and Path(str(source)).is_dir():
        return load_benchmark(str(source), reference=reference, exemplars=folder)
    raise InputError(f"cannot rebuild dataset {name!r} from its run record (source {source!r} not found)",
                     hint="pass the GT folder explicitly")
