"""What a model needs before `vcbench evaluate` starts: its weight files (present or not), whether a
GPU is advised, and what a run will cost, from seconds per frame measured on the development CPU.

The figures are `benchmarks/model_speed.py` and `benchmarks/postprocess_speed.py` at DAVIS size
(480x854) on the 2-core development machine (one thread, other jobs running: an idle machine is
faster); a run's estimate scales them by the frame area and the frame count. They are estimates to
plan with, not results: the run itself records its measured frames/s.
"""

from __future__ import annotations

from typing import Any, Mapping

from vcbench.baselines.registry import model_class
from vcbench.errors import VcbenchError
from vcbench.weights import get_spec, status

#: Reference frame area of the figures below (DAVIS, 480x854).
REF_PIXELS = 480 * 854
#: CPU seconds per frame at 480x854 of the plain models (None: not measured here).
CPU_SECONDS: dict[str, float | None] = {
    "gray": 0.05, "reinhard": 0.061, "welsh": 0.91, "propagate": 0.42, "zhang16": 0.91, "zhang17": 2.0,
    "instcolor": 22.0,  # three generators with 8 boxes; the Mask R-CNN detector comes on top
    "devc": None,
    # benchmarks/model_speed.py --models tcvc --frames 18, idle, 2 threads (2026-12-02)
    "tcvc": 2.05,
}
#: Models whose networks run at a fixed size whatever the frame size (tcvc: net_size 256): their
#: figure is not scaled by the frame area.
FIXED_SIZE_MODELS = frozenset({"tcvc"})
#: CPU seconds per frame a wrapper adds at 480x854; dvp: per epoch (one Adam step per frame and epoch).
WRAPPER_CPU_SECONDS = {"lai18": 3.9, "dvp": 6.25}
#: Above this many CPU seconds per frame a GPU is advised.
GPU_ADVISED_ABOVE = 1.0


def _weights_lines(cls: type, options: Mapping[str, Any]) -> list[str]:
    out = []
    for name in getattr(cls, "weights", ()):
        try:
            spec = get_spec(name)
            state, path, _ = status(name)
        except VcbenchError:
            out.append(f"{name}: unknown to the registry")
            continue
        given = options.get("weights") or options.get(f"{name}.weights")
        out.append(f"{spec.filename}: " + ("given by path" if given else
                                            ("present" if state != "missing" else f"MISSING (expected at {path})")))
    return out


def estimate_seconds_per_frame(model: str, options: Mapping[str, Any], height: int, width: int) -> float | None:
    """CPU seconds per frame of `model` (BASE+WRAPPER chains too) at a frame size; None if unknown."""
    base, *wrappers = model.split("+")
    s = CPU_SECONDS.get(base)
    if s is None:
        return None
    area = height * width / REF_PIXELS
    total = s if base in FIXED_SIZE_MODELS else s * area
    for w in wrappers:
        if w == "dvp":
            epochs = int(options.get("epochs", options.get("dvp.epochs", 50)))
            cap = options.get("max_side", options.get("dvp.max_side"))
            scale = min(1.0, int(cap) / max(height, width)) ** 2 if cap else 1.0
            total += epochs * WRAPPER_CPU_SECONDS["dvp"] * area * scale
        elif w in WRAPPER_CPU_SECONDS:
            total += WRAPPER_CPU_SECONDS[w] * area
        else:
            return None
    return total


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe(model: str, options: Mapping[str, Any], *, n_frames: int, size: tuple[int, int],
             device: str | None = None) -> str:
    """The lines `vcbench evaluate` prints before it starts (see the module docstring)."""
    cls = model_class(model)
    h, w = size
    weights = _weights_lines(cls, options)
    s = estimate_seconds_per_frame(model, options, h, w)
    lines = [f"vcbench: {model} needs: weights: " + ("; ".join(weights) if weights else "none")]
    if s is None:
        lines.append(f"vcbench: speed: not measured here for {model}; a GPU is advised for learned models")
    else:
        gpu = "GPU advised" if s > GPU_ADVISED_ABOVE else "runs well on the CPU"
        lines.append(f"vcbench: speed measured here (2-core CPU): about {s:.2f} s/frame at {h}x{w}, so about "
                     f"{_duration(s * n_frames)} for these {n_frames} frames on the CPU; {gpu}"
                     + (" (running on the GPU now)" if device and str(device).startswith("cuda") else ""))
    return "\n".join(lines)
