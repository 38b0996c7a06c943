"""The one device resolver: what "auto", "cpu", "cuda" or "cuda:N" means here, and how a run names it.

Score, evaluate, the builds and retrieval all take a device string from the user; resolving it in one
place gives them the same rules (auto = the GPU when there is one) and the same one-line errors.
"""

from __future__ import annotations

import os
import platform

import torch

from vcbench.errors import InputError, VcbenchError

def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """`None`/""/"auto" -> cuda when CUDA is available, else cpu; anything else as torch parses it.

    An unparsable name is an InputError; a CUDA device asked for on a machine without CUDA is a
    VcbenchError (one line each, as the CLI prints them).
    """
    if spec is None or (isinstance(spec, str) and spec in ("", "auto")):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"unknown device {spec!r}", hint="use cpu, cuda, cuda:N or auto") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VcbenchError(f"--device {spec} was asked for but no CUDA device is available",
                           hint="use --device cpu (or auto), or a CUDA build of torch on a machine with a GPU")
    return dev


def device_description(device: torch.device) -> str:
    """How a run records its device: "cuda:0 (NVIDIA H100 ...)" or "cpu (x86_64, 2 cores)"."""
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
