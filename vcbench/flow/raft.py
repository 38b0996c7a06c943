"""RAFT-large from torchvision with the C+T+S+K+H weights (`raft_large_C_T_SKHT_V2-ff5fadd5.pth`).

The network is built with `weights=None` and the state dict comes from vcbench's weights resolver, so a
user's existing torch hub download counts, nothing downloads behind the user's back, and the file's
sha256 goes into the run record. Inputs are mapped to [-1, 1] as `Raft_Large_Weights.transforms()`
does and replicate-padded to a multiple of 8 (RAFT's InputPadder) and to at least 128 px a side (the
smallest input torchvision's correlation pyramid accepts), the flow cropped back.
"""

from __future__ import annotations

import torch

from vcbench import weights as vw
from vcbench.flow.base import FlowEstimator, pad_to_multiple, unpad

NUM_FLOW_UPDATES = 12
PAD_MULTIPLE = 8
#: torchvision's RAFT needs feature maps of at least 16 (its 4-level correlation pyramid), i.e. 128 px.
MIN_SIZE = 128


class RAFTFlow(FlowEstimator):
    """torchvision `raft_large`, 12 flow updates, last prediction."""

    name = "raft"

    def __init__(self, device: str | torch.device = "cpu", *, weights_path: str | None = None,
                 allow_unverified: bool = False, batch_size: int = 4) -> None:
        super().__init__(device)
        self._resolved = vw.resolve("raft_large", weights_path, allow_unverified=allow_unverified)
        import torchvision
        from torchvision.models.optical_flow import raft_large

        model = raft_large(weights=None, progress=False)
        model.load_state_dict(vw.load_state_dict(self._resolved.path), strict=True)
        self.model = model.eval().to(self.device)
        self.batch_size = max(1, int(batch_size))
        self.params = {"model": "torchvision raft_large", "weights": "C_T_SKHT_V2",
                       "num_flow_updates": NUM_FLOW_UPDATES, "input": "RGB scaled to [-1, 1]",
                       "pad": f"replicate to a multiple of {PAD_MULTIPLE}, at least {MIN_SIZE}", "torchvision": torchvision.__version__}

    def weights_used(self) -> dict[str, vw.WeightFile]:
        return self._resolved.used()

    @staticmethod
    def normalise(x: torch.Tensor) -> torch.Tensor:
        """uint8 RGB -> float in [-1, 1], as torchvision's OpticalFlow preset (x/255, mean 0.5, std 0.5)."""
        return ((x.float() / 255.0) - 0.5) / 0.5

    @torch.inference_mode()
    def _flow(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(0, a.shape[0], self.batch_size):
            x = self.normalise(a[i:i + self.batch_size].to(self.device))
            y = self.normalise(b[i:i + self.batch_size].to(self.device))
            x, pads = pad_to_multiple(x, PAD_MULTIPLE, MIN_SIZE)
            y, _ = pad_to_multiple(y, PAD_MULTIPLE, MIN_SIZE)
            flow = self.model(x.contiguous(), y.contiguous(), num_flow_updates=NUM_FLOW_UPDATES)[-1]
            out.append(unpad(flow, pads).float())
        return torch.cat(out)
