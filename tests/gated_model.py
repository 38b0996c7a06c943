"""A test model that holds its run open until the test lets it go: `gray` whose first colorize waits
for the file named by $VCBENCH_TEST_GATE (at most two minutes), so a test can act while a real
`vcbench evaluate` process holds its claim, however fast the machine is."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from vcbench.baselines.gray import Gray


class Gated(Gray):
    name = "gated"
    description = "gray, held until $VCBENCH_TEST_GATE exists (tests only)"

    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        gate = Path(os.environ["VCBENCH_TEST_GATE"])
        deadline = time.monotonic() + 120
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return super().colorize(luminance)
