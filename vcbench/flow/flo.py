"""Middlebury `.flo` optical-flow files: the format of Lai et al.'s precomputed flow and of DEVC's loader.

Layout: float32 magic 202021.25, int32 width, int32 height, then height*width (u, v) float32 pairs,
row-major, little-endian. Writes go through a temporary name (`vcbench.atomic`) so an interrupted
run never leaves a truncated file that a later run would trust.
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


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write (H, W, 2) flow to a `.flo` file atomically (temporary name, then rename)."""
    atomic_write_bytes(path, encode_flo(flow))
