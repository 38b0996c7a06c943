"""Precomputed GT flow in Lai et al.'s layout, so published flow (or a user's own) can be scored.

    PATH/fw_flow/<clip>/%05d.flo        flow t -> t+1 (Middlebury), computed on the GT video
    PATH/fw_occlusion/<clip>/%05d.png   Lai's occlusion mask, 255 = occluded
    PATH/bw_flow/<clip>/%05d.flo        flow t+1 -> t, used to compute the mask when there is no
                                        fw_occlusion folder
(`%05d.png` KITTI 16-bit flow files are read in place of `.flo`; their invalid pixels count as unknown.)

Lai's evaluation reads the mask PNG as value/255 and uses 1 - that as the non-occlusion weight; the
same is done here (a binary mask gives 0/1).

Flow files holding NaN or infinite values are refused (one line naming the file and the frame pair).
Middlebury's unknown-flow marker (|u| or |v| >= 1e9) is honoured: such pixels count as occluded
(weight 0; their flow is set to 0 so no warp samples with it), and with bw_flow a pixel whose
backward flow at its target is unknown is occluded too. The protocol record says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vcbench.errors import InputError
from vcbench.flow.base import FlowEstimator
from vcbench.flow.flo import UNKNOWN_FLOW_THRESH, read_flow_file, unknown_flow
from vcbench.flow.occlusion import occlusion_mask
from vcbench.flow.pairs import FlowPairs
from vcbench.flow.warp import backward_warp


class PrecomputedFlow(FlowEstimator):
    """GT flow and masks read from disk by clip and frame index (no estimator runs): `pairs()`, which
    `flow_pairs` calls because `precomputed` is set, instead of flow computed from two frames."""

    name = "precomputed"
    precomputed = True

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.root = Path(path)
        if not (self.root / "fw_flow").is_dir():
            raise InputError("no fw_flow folder in the precomputed flow folder", path=self.root,
                             hint="use Lai's layout PATH/fw_flow/<clip>/%05d.flo (+ fw_occlusion or bw_flow)")
        self.has_occlusion = (self.root / "fw_occlusion").is_dir()
        if not self.has_occlusion and not (self.root / "bw_flow").is_dir():
            raise InputError("neither fw_occlusion nor bw_flow folder in the precomputed flow folder",
                             path=self.root, hint="add PATH/fw_occlusion/<clip>/%05d.png or PATH/bw_flow/<clip>/%05d.flo")
        self.params: dict[str, Any] = {
            "path": str(self.root.resolve()),
            "occlusion": "fw_occlusion PNG (255 = occluded)" if self.has_occlusion
            else "Lai's test on fw_flow and bw_flow",
            "unknown_flow": f"|u| or |v| >= {UNKNOWN_FLOW_THRESH:g} (Middlebury's marker) counts as occluded",
        }

    def _flow(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise TypeError("precomputed flow is read by clip and frame index (flow_pairs(frames, estimator, clip=...) "
                        "or pairs()), not computed from two frames")

    def _files(self, kind: str, clip: str, first: int, count: int, ext: str) -> list[Path]:
        if ext == "flo" and not (self.root / kind / clip / f"{first:05d}.flo").is_file() and \
                (self.root / kind / clip / f"{first:05d}.png").is_file():
            ext = "png"  # KITTI 16-bit flow PNGs (vcbench.flow.flo), as build-dataset stores flow
        files = [self.root / kind / clip / f"{t:05d}.{ext}" for t in range(first, first + count)]
        missing = [p for p in files if not p.is_file()]
        if missing:
            shown = ", ".join(str(p) for p in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise InputError(f"missing precomputed flow file(s) for clip {clip!r}: {shown}", path=self.root,
                             hint="a clip with N frames needs files 00000 .. N-2")
        return files

    def _flows(self, files: list[Path], size: tuple[int, int] | None, clip: str, first: int,
               kind: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 2, H, W) flow with unknown-marker pixels zeroed, and the (N, 1, H, W) unknown mask."""
        arrs, unknown = [], []
        for t, p in enumerate(files, start=first):
            pair = f"{t} -> {t + 1}" if kind == "fw_flow" else f"{t + 1} -> {t}"
            f = read_flow_file(p, what=f"clip {clip!r}, frames {pair}")
            if size is not None and f.shape[:2] != tuple(size):
                raise InputError(f"flow is {f.shape[1]}x{f.shape[0]} but the frames are {size[1]}x{size[0]}", path=p,
                                 hint="precomputed flow must be at the GT frames' resolution")
            u = unknown_flow(f)
            f[u] = 0.0
            arrs.append(f)
            unknown.append(u)
        flow = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()
        return flow, torch.from_numpy(np.stack(unknown))[:, None].float()

    def _occlusion(self, files: list[Path], size: tuple[int, int]) -> torch.Tensor:
        from PIL import Image

        masks = []
        for p in files:
            try:
                with Image.open(p) as im:
                    m = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
            except OSError as exc:
                raise InputError(f"unreadable occlusion mask ({exc})", path=p, hint="re-create the mask PNG") from exc
            if m.shape != tuple(size):
                raise InputError(f"mask is {m.shape[1]}x{m.shape[0]} but the flow is {size[1]}x{size[0]}", path=p,
                                 hint="masks must match the flow's resolution")
            masks.append(m)
        return torch.from_numpy(np.stack(masks))[:, None]

    def pairs(self, clip: str, first: int, count: int, size: tuple[int, int] | None = None) -> FlowPairs:
        """Flow and non-occlusion mask of the pairs (t, t+1) for t in first .. first+count-1."""
        fw, fw_unknown = self._flows(self._files("fw_flow", clip, first, count, "flo"), size, clip, first, "fw_flow")
        h, w = fw.shape[-2:]
        if self.has_occlusion:
            occ = self._occlusion(self._files("fw_occlusion", clip, first, count, "png"), (h, w))
        else:
            bw, bw_unknown = self._flows(self._files("bw_flow", clip, first, count, "flo"), (h, w), clip, first,
                                         "bw_flow")
            occ = occlusion_mask(fw, bw)
            if bw_unknown.any():  # the backward flow where x + fw(x) lands is unknown
                occ = torch.maximum(occ, (backward_warp(bw_unknown, fw) > 0).float())
        occ = torch.maximum(occ, fw_unknown)
        return FlowPairs(fw=fw.to(self.device), noc=(1.0 - occ).to(self.device, torch.float32))

    def __repr__(self) -> str:
        return f"PrecomputedFlow({str(self.root)!r})"
