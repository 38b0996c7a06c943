"""Optical-flow files: Middlebury `.flo` (Lai et al.'s precomputed flow, DEVC's loader) and KITTI's
16-bit PNG (what build-dataset stores: 5-10x smaller).

`.flo` layout: float32 magic 202021.25, int32 width, int32 height, then height*width (u, v) float32
pairs, row-major, little-endian. Writes go through a temporary name (`vcbench.atomic`) so an
interrupted run never leaves a truncated file that a later run would trust.

KITTI 16-bit PNG: three uint16 channels (u, v, valid) with u = (value - 2^15) / 64, so flow is
stored on a 1/64 px grid: the error is at most 1/128 px for |u|, |v| < 512 px (float16, the format
before, errs up to 1/128 px already at 16..32 px and 1/32 px at 64..128 px). Values outside
[-512, 512) are saturated and their pixels marked invalid (valid = 0, KITTI's "no flow known"),
which `read_flow_file` returns as Middlebury's unknown marker, so the scorer treats them as occluded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vcbench.atomic import atomic_write_bytes
from vcbench.errors import InputError

FLO_MAGIC = np.float32(202021.25)
_HEADER_BYTES = 12
# Middlebury's own sanity bound on the dimensions; anything larger is a corrupt header.
_MAX_SIDE = 1 << 16
#: Middlebury's unknown-flow marker: a component with |value| >= 1e9 means "no flow known here"
#: (its GT files store 1e10). Such pixels are occluded for scoring (`vcbench.flow.precomputed`).
UNKNOWN_FLOW_THRESH = 1e9


def unknown_flow(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels carrying Middlebury's unknown-flow marker in u or v."""
    return (np.abs(flow) >= UNKNOWN_FLOW_THRESH).any(axis=-1)


def _check_finite(flow: np.ndarray, path: Path, what: str | None) -> None:
    """NaN or infinite flow would score silently wrong (a NaN warp error, or a mask that hides it)."""
    bad = ~np.isfinite(flow).all(axis=-1)
    if bad.any():
        y, x = (int(v[0]) for v in np.nonzero(bad))
        kinds = " and ".join(k for k, hit in (("NaN", np.isnan(flow).any()), ("infinite", np.isinf(flow).any())) if hit)
        where = f"{what}: " if what else ""
        raise InputError(f"{where}flow holds {kinds} values at {int(bad.sum())} pixel(s), the first at x={x}, y={y}",
                         path=path, hint="recompute this flow file (Middlebury marks unknown flow with 1e10, not NaN)")


def read_flo(path: str | Path, *, what: str | None = None) -> np.ndarray:
    """Read a `.flo` file as an (H, W, 2) float32 array of (u, v) displacements in pixels.

    NaN or infinite values are refused (an InputError naming the file, `what` frame it is and the
    first bad pixel); Middlebury's unknown-flow marker (|value| >= 1e9) is returned as stored.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError("flow file not found", path=path, hint="check the flow folder") from exc
    except OSError as exc:
        raise InputError(f"cannot read flow file ({exc.strerror})", path=path) from exc
    if len(data) < _HEADER_BYTES:
        raise InputError(f"truncated .flo file ({len(data)} bytes, header needs {_HEADER_BYTES})", path=path,
                         hint="recompute or re-copy this flow file")
    magic = np.frombuffer(data, "<f4", count=1, offset=0)[0]
    if magic != FLO_MAGIC:
        raise InputError(f"not a Middlebury .flo file (magic {float(magic)!r}, expected 202021.25)", path=path,
                         hint="flow files must be Middlebury .flo")
    w, h = (int(v) for v in np.frombuffer(data, "<i4", count=2, offset=4))
    if not (0 < w <= _MAX_SIDE and 0 < h <= _MAX_SIDE):
        raise InputError(f"corrupt .flo header (width {w}, height {h})", path=path,
                         hint="recompute or re-copy this flow file")
    need = _HEADER_BYTES + 8 * w * h
    if len(data) != need:
        kind = "truncated" if len(data) < need else "oversized"
        raise InputError(f"{kind} .flo file ({len(data)} bytes, {w}x{h} flow needs {need})", path=path,
                         hint="recompute or re-copy this flow file")
    flow = np.frombuffer(data, "<f4", count=2 * w * h, offset=_HEADER_BYTES).reshape(h, w, 2)
    _check_finite(flow, path, what)
    return flow.astype(np.float32)  # native-endian, writable copy


def encode_flo(flow: np.ndarray) -> bytes:
    """The bytes of a `.flo` file holding `flow` (H, W, 2)."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    h, w = flow.shape[:2]
    header = FLO_MAGIC.astype("<f4").tobytes() + np.array([w, h], "<i4").tobytes()
    return header + np.ascontiguousarray(flow, dtype="<f4").tobytes()


#: KITTI's fixed point: value = (stored - FLOW_PNG_OFFSET) / FLOW_PNG_SCALE.
FLOW_PNG_SCALE = 64.0
FLOW_PNG_OFFSET = 2 ** 15
#: The largest round-trip error of `encode_flow_png` inside its range (half a grid step).
FLOW_PNG_MAX_ERROR = 0.5 / FLOW_PNG_SCALE
FLOW_PNG_RANGE = FLOW_PNG_OFFSET / FLOW_PNG_SCALE  # |value| < 512 px is stored to FLOW_PNG_MAX_ERROR
#: zlib level 6 (its default): 15-25% smaller than level 3 at about twice its time, still far below
#: the flow estimator's; level 9 saves 5% more at 10x the time.
FLOW_PNG_COMPRESSION = 6


def quantize_flow(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 2) flow -> the (H, W, 2) uint16 KITTI values and the (H, W) bool validity (False where
    a component was out of range or not finite and had to be saturated)."""
    f = np.asarray(flow, np.float64)
    q = np.rint(f * FLOW_PNG_SCALE) + FLOW_PNG_OFFSET
    valid = (np.isfinite(q) & (q >= 0) & (q <= 65535)).all(axis=-1)
    q = np.clip(np.nan_to_num(q, nan=FLOW_PNG_OFFSET), 0, 65535).astype(np.uint16)
    return q, valid


def encode_flow_png(flow: np.ndarray) -> bytes:
    """The bytes of a KITTI 16-bit flow PNG holding (H, W, 2) flow; deterministic for equal input."""
    import cv2

    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    q, valid = quantize_flow(flow)
    bgr = np.dstack([valid.astype(np.uint16), q[..., 1], q[..., 0]])  # OpenCV writes B, G, R = valid, v, u
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, FLOW_PNG_COMPRESSION])
    if not ok:
        raise RuntimeError("OpenCV could not encode a 16-bit flow PNG")
    return buf.tobytes()


def decode_flow_png(data: bytes, path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A KITTI 16-bit flow PNG -> ((H, W, 2) float32 flow, (H, W) bool valid). Invalid pixels keep
    their saturated value (the export to `.flo` writes it; `read_flow_file` marks them unknown)."""
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype != np.uint16 or img.ndim != 3 or img.shape[2] != 3:
        what = "undecodable" if img is None else f"{img.dtype} {img.shape}"
        raise InputError(f"not a KITTI 16-bit flow PNG ({what}; expected 3 uint16 channels u, v, valid)", path=path,
                         hint="recompute this flow file")
    flow = (img[..., [2, 1]].astype(np.float32) - FLOW_PNG_OFFSET) / np.float32(FLOW_PNG_SCALE)
    return flow, img[..., 0] > 0


def read_flow_file(path: str | Path, *, what: str | None = None) -> np.ndarray:
    """(H, W, 2) float32 flow from a `.flo` or a KITTI 16-bit `.png`; a PNG's invalid pixels come back
    as Middlebury's unknown-flow marker (1e10), which the scorer counts as occluded."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        return read_flo(path, what=what)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read flow file ({exc.strerror})", path=path, hint="check the flow folder") from exc
    flow, valid = decode_flow_png(data, path)
    flow[~valid] = 1e10
    return flow


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write (H, W, 2) flow to a `.flo` file atomically (temporary name, then rename)."""
    atomic_write_bytes(path, encode_flo(flow))
