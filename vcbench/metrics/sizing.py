"""Batch and chunk sizes from the frame size and the device, instead of fixed frame counts.

A fixed count of frames is either too small for 256x144 or far too large for 1080p (16 float64 RGB
frames at 1920x1080 are 800 MB per temporary). Every metric therefore cuts its batch into chunks
whose working memory stays under a per-device budget, and the scorer's decode batch is chosen so
that a batch of uint8 frames is a few tens of MB whatever the resolution. `--batch-size` still sets
the decode batch explicitly; chunking inside the metrics then keeps memory bounded anyway.
"""

from __future__ import annotations

from typing import Iterator

import torch

from vcbench.devices import resolve_device

#: Working memory one metric may use for one chunk. CPU: small enough to stay near the caches and to
#: keep 1080p scoring within a few GB; GPU: large chunks keep the device busy.
WORK_BYTES = {"cpu": 96 << 20, "cuda": 1 << 30}
#: uint8 bytes of one side's decoded batch the scorer aims at (prediction + GT are twice this).
BATCH_BYTES = {"cpu": 24 << 20, "cuda": 192 << 20}
MAX_BATCH = 32


def work_bytes(device: torch.device | str) -> int:
    return WORK_BYTES.get(torch.device(device).type, WORK_BYTES["cpu"])


def frame_chunks(n: int, per_frame_bytes: int, device: torch.device | str) -> Iterator[slice]:
    """Slices of `range(n)` whose `per_frame_bytes * len` fits `work_bytes(device)` (at least 1 frame)."""
    step = max(1, work_bytes(device) // max(1, int(per_frame_bytes)))
    for i in range(0, n, step):
        yield slice(i, min(n, i + step))


def default_batch_size(height: int, width: int, device: torch.device | str = "cpu") -> int:
    """Frames per decode batch for frames of (height, width): ~BATCH_BYTES of uint8 RGB, 2..MAX_BATCH.

    256x144: 32; 854x480: 20; 1280x720: 9; 1920x1080: 4 on the CPU. `device` as `resolve_device`
    reads it, so a scorer asked for "auto" sizes for the device it runs on.
    """
    per = max(1, 3 * int(height) * int(width))
    budget = BATCH_BYTES.get(resolve_device(device).type, BATCH_BYTES["cpu"])
    return int(min(MAX_BATCH, max(2, budget // per)))
