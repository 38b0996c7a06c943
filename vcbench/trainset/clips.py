"""Cut raw videos into fixed-length training clips, one decode per frame.

Each video is decoded once (PyAV through `vcbench.frames`); every frame is resized to the clip size
straight away ("fill then centre crop": scale so the frame covers H x W, then cut the centre, so no
border and no distortion; DEVC's own CenterPad does the same), fed to PySceneDetect's detector for
shot boundaries, and buffered only until the clip it belongs to is known not to straddle a cut.
Memory is bounded by one clip plus the detector's look-behind, whatever the video's length.

Clips are `length` consecutive frames of one shot (non-overlapping by default). Three filters reject
clips that teach a colorization network nothing, each decision kept with its reason and measures:
near-static (mean absolute frame difference of the luma, 0..255), near-gray (mean Lab chroma) and
too dark (mean Lab L).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Iterator

import cv2
import numpy as np

from vcbench.trainset.sources.base import SourceVideo
from vcbench.frames import Clip


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut and which are kept. Defaults follow DEVC: 25 frames at 216x384."""

    length: int = 25
    height: int = 216
    width: int = 384
    stride: int | None = None  # frames between clip starts; None = length (no overlap)
    max_clips_per_shot: int | None = None
    detector: str = "content"  # "content" (ContentDetector) or "adaptive" (AdaptiveDetector)
    threshold: float = 27.0  # ContentDetector threshold (PySceneDetect default)
    min_scene_len: int = 15  # frames
    min_motion: float = 0.5  # mean |dY| over consecutive frames, 0..255; below: near-static
    min_chroma: float = 4.0  # mean Lab chroma sqrt(a^2+b^2); below: near-gray
    min_luma: float = 15.0  # mean Lab L (0..100); below: too dark

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CandidateClip:
    """A cut clip with the filters' measures and verdict; `frames` is (T, H, W, 3) uint8 RGB."""

    clip_id: str
    video: SourceVideo
    shot: int
    start: int
    end: int  # exclusive
    frames: np.ndarray
    measures: dict
    accepted: bool
    reason: str


def resize_fill(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale so the frame covers height x width (aspect kept), then centre-crop to exactly that size.

    Area interpolation when shrinking (no aliasing), bicubic when enlarging; both deterministic."""
    h, w = frame.shape[:2]
    scale = max(height / h, width / w)
    nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        frame = cv2.resize(frame, (nw, nh), interpolation=interp)
    top, left = (nh - height) // 2, (nw - width) // 2
    return np.ascontiguousarray(frame[top:top + height, left:left + width])


def clip_measures(frames: np.ndarray) -> dict:
    """Motion, chroma and brightness of a (T, H, W, 3) uint8 clip, as plain floats.

    Measured on every second pixel of each axis: these are means over the whole clip, which the
    subsampling leaves practically unchanged at a quarter of the cost."""
    frames = frames[:, ::2, ::2]
    luma = np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]).astype(np.float32)
    motion = float(np.mean(np.abs(np.diff(luma, axis=0)))) if len(frames) > 1 else 0.0
    # Lab from OpenCV's 8-bit path (L scaled to 0..255, a and b offset by 128): quantised to one
    # level, which is far below the filter thresholds, and several times faster than the float path.
    chroma, light = [], []
    for f in frames:
        lab = cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2Lab).astype(np.float32)
        chroma.append(float(np.mean(np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0))))
        light.append(float(np.mean(lab[..., 0])) * 100.0 / 255.0)
    return {"motion": round(motion, 4), "chroma": round(float(np.mean(chroma)), 4), "luma": round(float(np.mean(light)), 4)}


def judge(measures: dict, spec: ClipSpec) -> tuple[bool, str]:
    """(accepted, reason): the first failed filter in the order dark, gray, static."""
    if measures["luma"] < spec.min_luma:
        return False, f"too dark: mean L {measures['luma']:.2f} < {spec.min_luma}"
    if measures["chroma"] < spec.min_chroma:
        return False, f"near-gray: mean chroma {measures['chroma']:.2f} < {spec.min_chroma}"
    if measures["motion"] < spec.min_motion:
        return False, f"near-static: mean |frame difference| {measures['motion']:.3f} < {spec.min_motion}"
    return True, "accepted"


def _make_detector(spec: ClipSpec):
    from scenedetect.detectors import AdaptiveDetector, ContentDetector

    if spec.detector == "adaptive":
        return AdaptiveDetector(min_scene_len=spec.min_scene_len)
    if spec.detector == "content":
        return ContentDetector(threshold=spec.threshold, min_scene_len=spec.min_scene_len)
    raise ValueError(f"unknown shot detector {spec.detector!r}")


def _frame_rate(video: SourceVideo) -> float:
    import av

    try:
        with av.open(str(video.path)) as c:
            rate = c.streams.video[0].average_rate
            return float(rate) if rate else 25.0
    except Exception:  # noqa: BLE001 - a header without a rate is not fatal; decoding reports real damage
        return 25.0


def extract_clips(video: SourceVideo, spec: ClipSpec) -> Iterator[CandidateClip]:
    """Yield every candidate clip of `video` in order, accepted or not (the caller records both)."""
    from scenedetect import FrameTimecode

    detector = _make_detector(spec)
    fps = _frame_rate(video)
    lag = int(detector.event_buffer_length) + 1
    stride = spec.stride or spec.length
    buf: deque[np.ndarray] = deque()
    buf_start = 0  # frame index of buf[0]
    shot, shot_clips = 0, 0

    def emit(upto: int) -> Iterator[CandidateClip]:
        """Emit the complete clips whose frames all lie before frame index `upto`."""
        nonlocal buf_start, shot_clips
        while buf_start + spec.length <= upto and len(buf) >= spec.length:
            if spec.max_clips_per_shot is not None and shot_clips >= spec.max_clips_per_shot:
                return
            frames = np.stack([buf[i] for i in range(spec.length)])
            measures = clip_measures(frames)
            ok, reason = judge(measures, spec)
            yield CandidateClip(f"{video.video_id}_s{shot:03d}_c{shot_clips:03d}", video, shot, buf_start,
                                buf_start + spec.length, frames, measures, ok, reason)
            shot_clips += 1
            for _ in range(min(stride, len(buf))):
                buf.popleft()
            buf_start += stride

    def cut(at: int) -> Iterator[CandidateClip]:
        nonlocal buf_start, shot, shot_clips
        yield from emit(at)
        while buf and buf_start < at:  # tail of the shot, too short for a clip
            buf.popleft()
            buf_start += 1
        buf_start = max(buf_start, at)
        shot, shot_clips = shot + 1, 0

    idx = -1
    for idx, frame in enumerate(Clip(video.video_id, video.path, "video").iter_frames()):
        small = resize_fill(frame, spec.height, spec.width)
        cuts = detector.process_frame(FrameTimecode(idx, fps), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        for c in sorted(int(c.frame_num) for c in cuts):
            if c > 0:
                yield from cut(c)
        if idx >= buf_start:
            buf.append(small)
        yield from emit(idx + 1 - lag)
    if idx >= 0:
        for c in sorted(int(c.frame_num) for c in detector.post_process(FrameTimecode(idx, fps))):
            if c > 0:
                yield from cut(c)
    yield from emit(idx + 1)
