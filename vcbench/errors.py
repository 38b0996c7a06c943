"""User-facing errors.

Anything a user can cause (a missing file, a bad frame, absent weights) raises `VcbenchError` with one
line saying what went wrong, which file, and what to do. The CLI prints that line and exits non-zero
without a traceback; programming errors are left to propagate.
"""

from __future__ import annotations

from pathlib import Path


class VcbenchError(Exception):
    """An error the user can fix; its message is one line: what, which file, what to do."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str | None = None):
        parts = [f"{path}: {message}" if path is not None else message]
        if hint:
            parts.append(hint)
        super().__init__(" ".join(p.rstrip(".") + "." for p in parts))
        self.path = None if path is None else Path(path)
        self.hint = hint


class InputError(VcbenchError):
    """Bad or inconsistent input data (frames, videos, folders, lists)."""


class WeightsError(VcbenchError):
    """Pretrained weights missing, unverifiable or unloadable."""


class MissingDependencyError(WeightsError):
    """An optional package a component needs is not installed (e.g. ptlflow for FlowNet2). A
    WeightsError on purpose: whoever treats missing weights as "this component is unavailable" (the
    metric suite, for flow-based metrics) treats a missing package the same way."""


class DownloadError(VcbenchError):
    """A download failed after its retries (dead link, offline, checksum mismatch)."""
