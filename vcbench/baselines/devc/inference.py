"""DEVC inference: the official `test.py` path, the leaderboard path, and their options.

The networks only ever see the frame's L (its ab is never read), the reference's Lab and the
previous output, so everything here is written for L input; `official_frame_l` reproduces the
official pre-processing of an RGB frame exactly (CenterPad = skimage anti-aliased resize to fill,
centre crop to 432x768, truncation to uint8, rgb2lab).

Geometries (`DEVCOptions.geometry`):

- "official" (the Python default, so the API reproduces the official `test.py`): frames at 432x768
  as CenterPad makes them, network pass at x0.5 (216x384) with the bilinear x0.5 of the official
  code; output 432x768, as the official code writes it (it never returns to the input size).
- "leaderboard" (what `vcbench evaluate --model devc` uses unless `--model-option geometry=...`,
  through `DEVC.evaluate_defaults`): no crop; the frame is resized (bilinear, anti-aliased) so
  its area is about `net_area` (216*384) with W a multiple of 16 and H of 8; the reference keeps its
  own aspect ratio at the same area (the same size as the frame in propagation mode). The ab is
  upsampled bilinearly to the input size and smoothed with the full-resolution L as guide.
- "pad": any aspect ratio, no resize beyond `net_scale` (default 0.5, the official half-resolution
  pass): the frame is reflect-padded to W % 16 == 0, H % 8 == 0 and unpadded after; output at the
  input size. The correlation runs in row chunks, so memory stays bounded at high resolution.

Per frame: VGG19 relu2_2..5_2 of (L+50)/100 x3, WarpNet matching against the reference (features
computed once per clip) at temperature 1e-10 in float32, ColorVidNet on cat(L, warped ab,
similarity, previous Lab); the previous Lab starts at zero in network units (L=50, ab=0), or at the
reference in propagation mode. Then ab upsampled, x1.25, fast global smoother (lambda 500,
sigma 4) guided by L*255/100 as uint8, joined with the full-resolution L, lab2rgb, clip, x255
truncated to uint8.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vcbench import lab as vlab
from vcbench.baselines.devc.colorvidnet import ColorVidNet
from vcbench.baselines.devc.smoother import DEVC_SMOOTHER, SmootherParams, fgs_filter
from vcbench.baselines.devc.vgg import VGG19Features
from vcbench.baselines.devc.warpnet import WarpNet, channel_normalize
from vcbench.errors import InputError

OFFICIAL_SIZE = (432, 768)
TRAIN_SIZE = (216, 384)
#: Smallest network side: relu5_2 (1/16) must keep 2 pixels for WarpNet's reflection padding.
MIN_SIDE = 32
L_CENTRE = 50.0

Geometry = Literal["official", "leaderboard", "pad"]
Precision = Literal["fp32", "fp16", "bf16"]


@dataclass(frozen=True)
class DEVCOptions:
    """Everything that changes DEVC's output; recorded with each run."""

    geometry: Geometry = "official"
    net_area: int = TRAIN_SIZE[0] * TRAIN_SIZE[1]
    net_scale: float = 0.5
    temperature: float = 1e-10
    hard_argmax: bool = False
    chroma_gain: float = 1.25
    smooth: bool = True
    smoother: SmootherParams = DEVC_SMOOTHER
    smoother_backend: str = "auto"
    precision: Precision = "fp32"
    propagate: bool = False
    corr_chunk_mb: int = 256

    def check(self) -> "DEVCOptions":
        if self.geometry not in ("official", "leaderboard", "pad"):
            raise InputError(f"unknown DEVC geometry {self.geometry!r}; valid: official, leaderboard, pad")
        if self.precision not in ("fp32", "fp16", "bf16"):
            raise InputError(f"unknown precision {self.precision!r}; valid: fp32, fp16, bf16")
        if self.net_area < MIN_SIDE * MIN_SIDE or not 0 < self.net_scale <= 4:
            raise InputError(f"net_area must be >= {MIN_SIDE * MIN_SIDE} and net_scale in (0, 4]")
        return self


# ------------------------------------------------------------------------------ geometry
def leaderboard_size(h: int, w: int, area: int = TRAIN_SIZE[0] * TRAIN_SIZE[1]) -> tuple[int, int]:
    """(H, W) of the aspect-preserving resize to about `area` pixels, W % 16 == 0, H % 8 == 0."""
    s = math.sqrt(area / (h * w))
    return max(MIN_SIDE, int(round(h * s / 8)) * 8), max(MIN_SIDE, int(round(w * s / 16)) * 16)


def pad_amounts(h: int, w: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) reflect padding up to H % 8 == 0 and W % 16 == 0, centred."""
    ph, pw = (-h) % 8, (-w) % 16
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def official_center_pad(rgb: np.ndarray, size: tuple[int, int] = OFFICIAL_SIZE) -> np.ndarray:
    """The official CenterPad + CenterCrop: skimage resize (anti-aliased, reflect) so the image
    fills `size`, centre crop, truncation to uint8."""
    from skimage.transform import resize

    img = np.asarray(rgb)
    h0, w0 = img.shape[:2]
    height, width = size
    if h0 / w0 == height / width:
        if h0 == height:
            return img.astype(np.uint8)
        new = [int(x * height / h0) for x in (h0, w0)]
        return resize(img, new, mode="reflect", preserve_range=True, clip=False, anti_aliasing=True).astype(np.uint8)
    if h0 / w0 > height / width:  # taller: fit the width, crop rows
        new = [int(x * width / w0) for x in (h0, w0)]
        big = resize(img, new, mode="reflect", preserve_range=True, clip=False, anti_aliasing=True)
        top = (big.shape[0] - height) // 2
        out = big[top:top + height]
    else:  # wider: fit the height, crop columns
        new = [int(x * height / h0) for x in (h0, w0)]
        big = resize(img, new, mode="reflect", preserve_range=True, clip=False, anti_aliasing=True)
        left = (big.shape[1] - width) // 2
        out = big[:, left:left + width]
    return out.astype(np.uint8)


def official_lab(rgb: np.ndarray) -> torch.Tensor:
    """RGB uint8 -> (1, 3, 432, 768) float32 Lab as the official transform makes it (L not centred)."""
    img = official_center_pad(rgb)
    lab = vlab.rgb_uint8_to_lab(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1), dtype=torch.float64)
    return lab.float().unsqueeze(0)


def half(x: torch.Tensor) -> torch.Tensor:
    """The official x0.5: bilinear, align_corners=False, scale_factor 0.5 (a 2x2 mean at even sizes)."""
    return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)


def devc_lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """DEVC's own differentiable Lab -> RGB (`tensor_lab2rgb`), used for the reference's VGG input.

    Its numerics differ from skimage's in the last float32 digits: it works in the tensor's dtype,
    with the 8-digit inverse sRGB matrix, clips negative z before the cube and clamps RGB to [0, 1].
    """
    L, a, b = lab[:, 0:1], lab[:, 1:2], lab[:, 2:3]
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp(min=0.0)
    f = torch.cat((fx, fy, fz), 1)
    xyz = torch.where(f > 0.2068966, f.clamp(min=0.0) ** 3.0, (f - 16.0 / 116.0) / 7.787)
    white = torch.tensor([0.95047, 1.0, 1.08883], dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    xyz = xyz * white
    # rows of (x, y, z) times the inverse sRGB matrix, as one matrix product: the official code
    # does exactly this, and the same product keeps the result equal to the last bit
    m = torch.tensor([[3.24048134, -0.96925495, 0.05564664],
                      [-1.53715152, 1.87599, -0.20404134],
                      [-0.49853633, 0.04155593, 1.05731107]], dtype=torch.float64).to(lab.dtype).to(lab.device)
    n, _, h, w = xyz.shape
    rgb = torch.mm(xyz.permute(0, 2, 3, 1).reshape(-1, 3), m).view(n, h, w, 3).permute(0, 3, 1, 2)
    # gamma on the selected elements only: torch's pow over a gathered 1-D tensor and over the full
    # tensor can differ in the last bit, and the official code takes the gathered path
    bright = rgb > 0.0031308
    out = rgb * 12.92
    out[bright] = 1.055 * torch.pow(rgb[bright], 1 / 2.4) - 0.055
    rgb = out
    return rgb.clamp(0.0, 1.0)


# ------------------------------------------------------------------------------ networks
@dataclass
class ReferenceState:
    """Per-clip reference side: matching keys, pooled Lab (L centred) and the half-res Lab."""

    key: torch.Tensor  # (B, 256, HW')
    pooled: torch.Tensor  # (B, 3, HW')
    lab: torch.Tensor  # (B, 3, h, w), L centred


class DEVCNet(nn.Module):
    """The three official networks with a batched, clip-aware forward."""

    def __init__(self) -> None:
        super().__init__()
        self.vgg = VGG19Features()
        self.warpnet = WarpNet()
        self.colornet = ColorVidNet(7)

    def _autocast(self, precision: Precision):
        dev = next(self.parameters()).device
        if precision == "fp32" or dev.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.float16 if precision == "fp16" else torch.bfloat16)

    def _features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        feats = self.vgg(rgb, ("r22", "r32", "r42", "r52"), preprocess=True)
        return [channel_normalize(f.float()).to(f.dtype) for f in feats]

    def encode_reference(self, lab_half: torch.Tensor, precision: Precision = "fp32") -> ReferenceState:
        """`lab_half` (B, 3, h, w) network-resolution Lab with L centred (L - 50)."""
        rgb = devc_lab_to_rgb(torch.cat((lab_half[:, :1] + L_CENTRE, lab_half[:, 1:]), 1).float())
        with self._autocast(precision):
            fused = self.warpnet.fuse(*self._features(rgb))
        key = self.warpnet.key(fused.float())
        pooled = F.avg_pool2d(lab_half.float(), 4).flatten(2)
        return ReferenceState(key, pooled, lab_half)

    def warp(self, l_half: torch.Tensor, ref: ReferenceState, clip_index: torch.Tensor | None,
             options: DEVCOptions) -> tuple[torch.Tensor, torch.Tensor]:
        """Warped reference ab and similarity, (N, 2, h, w) and (N, 1, h, w), for frames `l_half`
        (N, 1, h, w) centred; `clip_index[i]` says which reference row frame i uses."""
        rgb = ((l_half.float() + L_CENTRE) / (2 * L_CENTRE)).expand(-1, 3, -1, -1)
        with self._autocast(options.precision):
            fused = self.warpnet.fuse(*self._features(rgb))
        with torch.autocast(l_half.device.type, enabled=False):
            query = self.warpnet.query(fused.float())
            key, pooled = ref.key, ref.pooled
            if clip_index is not None:
                key, pooled = key[clip_index], pooled[clip_index]
            h4, w4 = l_half.shape[2] // 4, l_half.shape[3] // 4
            rows = max(1, (options.corr_chunk_mb << 20) // max(1, 4 * key.shape[2] * query.shape[0]))
            lab, sim = self.warpnet.correlate(query, key, pooled, (h4, w4), options.temperature,
                                              chunk=rows, hard=options.hard_argmax)
        up = lambda t: F.interpolate(t, scale_factor=4, mode="nearest")  # noqa: E731
        return up(lab[:, 1:3]), up(sim)

    def color(self, l_half: torch.Tensor, warped_ab: torch.Tensor, sim: torch.Tensor, prev_lab: torch.Tensor,
              precision: Precision = "fp32") -> torch.Tensor:
        x = torch.cat((l_half, warped_ab, sim, prev_lab), 1)
        with self._autocast(precision):
            return self.colornet(x).float()


# ------------------------------------------------------------------------------ the engine
@dataclass
class _Plan:
    in_hw: tuple[int, int]
    net_hw: tuple[int, int]  # size of the network pass (after resize / padding)
    pad: tuple[int, int, int, int]  # reflect padding at network resolution (pad geometry)
    resized_hw: tuple[int, int]  # pad geometry: the scaled size before padding


class DEVCEngine:
    """Colorizes B clips in lock-step (B = 1 for the Colorizer); holds the recurrent state."""

    def __init__(self, net: DEVCNet, options: DEVCOptions) -> None:
        self.net = net
        self.options = options.check()
        self.device = next(net.parameters()).device
        self.ref: ReferenceState | None = None
        self._ref_rgb: list[np.ndarray] = []
        self.prev: torch.Tensor | None = None
        self.plan: _Plan | None = None

    # -- clip state ---------------------------------------------------------------------------
    def start(self, references: list[np.ndarray]) -> None:
        """One RGB uint8 reference per clip (B of them). State resets."""
        if not references:
            raise InputError("DEVC needs a reference image per clip", hint="give one RGB reference image")
        self._ref_rgb = [np.ascontiguousarray(r) for r in references]
        self.ref, self.prev, self.plan = None, None, None

    def _make_plan(self, h: int, w: int) -> _Plan:
        o = self.options
        if o.geometry == "official":
            if (h, w) != OFFICIAL_SIZE:
                raise InputError(f"the official geometry takes 432x768 frames (CenterPad output), got {w}x{h}",
                                 hint="use official_lab() on RGB frames, or geometry leaderboard/pad")
            return _Plan((h, w), TRAIN_SIZE, (0, 0, 0, 0), TRAIN_SIZE)
        if o.geometry == "leaderboard":
            size = leaderboard_size(h, w, o.net_area)
            return _Plan((h, w), size, (0, 0, 0, 0), size)
        rh, rw = max(MIN_SIDE, int(round(h * o.net_scale))), max(MIN_SIDE, int(round(w * o.net_scale)))
        pad = pad_amounts(rh, rw)
        return _Plan((h, w), (rh + pad[2] + pad[3], rw + pad[0] + pad[1]), pad, (rh, rw))

    def _to_net(self, x: torch.Tensor) -> torch.Tensor:
        """Full-resolution (N, C, H, W) -> network resolution, per the plan."""
        p = self.plan
        if self.options.geometry == "official":
            return half(x)
        x = F.interpolate(x, size=p.resized_hw, mode="bilinear", align_corners=False,
                          antialias=p.resized_hw[0] < x.shape[2])
        if any(p.pad):
            x = F.pad(x, p.pad, mode="reflect")
        return x

    def _from_net(self, ab: torch.Tensor) -> torch.Tensor:
        """Network-resolution ab -> input resolution (bilinear), undoing the padding first."""
        p = self.plan
        if self.options.geometry == "official":
            return F.interpolate(ab, scale_factor=2, mode="bilinear", align_corners=False)
        l, r, t, b = p.pad
        ab = ab[:, :, t:ab.shape[2] - b, l:ab.shape[3] - r]
        return F.interpolate(ab, size=p.in_hw, mode="bilinear", align_corners=False)

    def _reference_lab(self, rgb: np.ndarray) -> torch.Tensor:
        """Network-resolution Lab (L centred), (1, 3, h, w), of one reference image."""
        o, p = self.options, self.plan
        if o.geometry == "official":
            return half(_centre(official_lab(rgb).to(self.device)))
        t = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1).unsqueeze(0).float() / 255.0
        if o.propagate or o.geometry == "pad":
            size = p.net_hw if o.propagate else None
            if size is None:  # pad geometry: same scale as the frames, own aspect, multiple-of sizes
                hh, ww = rgb.shape[:2]
                size = (max(MIN_SIDE, int(round(hh * o.net_scale / 8)) * 8),
                        max(MIN_SIDE, int(round(ww * o.net_scale / 16)) * 16))
        else:
            size = leaderboard_size(rgb.shape[0], rgb.shape[1], o.net_area)
        t = F.interpolate(t, size=size, mode="bilinear", align_corners=False,
                          antialias=size[0] < t.shape[2]).clamp(0.0, 1.0)
        return _centre(vlab.rgb_to_lab(t))

    def _ensure_reference(self) -> None:
        if self.ref is not None:
            return
        labs = [self._reference_lab(r) for r in self._ref_rgb]
        if len({tuple(x.shape) for x in labs}) != 1:
            raise InputError("references of clips batched together must share one size",
                             hint="batch clips whose references have the same size, or run them one by one")
        lab = torch.cat(labs, 0)
        with torch.inference_mode():
            self.ref = self.net.encode_reference(lab, self.options.precision)

    # -- frames ------------------------------------------------------------------------------
    @torch.inference_mode()
    def step_ab(self, l_full: torch.Tensor) -> torch.Tensor:
        """Network ab for T consecutive frames of B clips: `l_full` (B, T, 1, H, W) L in 0..100.
        Returns (B, T, 2, h, w) ab at network resolution (before upsampling and x1.25)."""
        b, t, _, h, w = l_full.shape
        if self.plan is None:
            self.plan = self._make_plan(h, w)
        elif self.plan.in_hw != (h, w):
            raise InputError(f"frame size changed inside the clip ({self.plan.in_hw[1]}x{self.plan.in_hw[0]} -> {w}x{h})")
        if len(self._ref_rgb) != b:
            raise InputError(f"{b} clips in the batch but {len(self._ref_rgb)} references")
        self._ensure_reference()
        # centre before resizing, as the official transform normalises before its x0.5
        l_net = self._to_net(_centre_l(l_full.reshape(b * t, 1, h, w).to(self.device, torch.float32)))
        clip_index = torch.arange(b, device=self.device).repeat_interleave(t) if b > 1 else None
        if b == 1:
            clip_index = None
        warped, sim = self.net.warp(l_net, self.ref, clip_index, self.options)
        hh, ww = l_net.shape[2:]
        l_net, warped, sim = (x.view(b, t, -1, hh, ww) for x in (l_net, warped, sim))
        if self.prev is None:
            if self.options.propagate:
                if tuple(self.ref.lab.shape[2:]) != (hh, ww):
                    raise InputError("propagation needs the reference at the frame's size")
                self.prev = self.ref.lab.float()
            else:
                self.prev = torch.zeros(b, 3, hh, ww, device=self.device)
        out = []
        for i in range(t):
            ab = self.net.color(l_net[:, i], warped[:, i], sim[:, i], self.prev, self.options.precision)
            self.prev = torch.cat((l_net[:, i], ab), 1)
            out.append(ab)
        return torch.stack(out, 1)

    @torch.inference_mode()
    def finish(self, ab_net: torch.Tensor, l_full: torch.Tensor) -> torch.Tensor:
        """(N, 2, h, w) network ab + (N, 1, H, W) L -> (N, 3, H, W) uint8 RGB at the input size."""
        o = self.options
        ab = self._from_net(ab_net.float()) * o.chroma_gain
        l_full = l_full.to(ab.device, torch.float32)
        if o.geometry == "official":
            l_full = (l_full - L_CENTRE) + L_CENTRE  # the official code un-centres a centred L (float32)
        if o.smooth:
            guide = (l_full * 255.0 / 100.0).to(torch.uint8)
            ab = fgs_filter(ab, guide, o.smoother, backend=o.smoother_backend)
        lab = torch.cat((l_full, ab.to(l_full.dtype)), 1)
        if ab.device.type == "cpu":
            lab = lab.double()  # the official lab2rgb runs in float64 (skimage)
        return vlab.lab_to_rgb_uint8(lab)

    def colorize(self, l_full: torch.Tensor) -> torch.Tensor:
        """(B, T, 1, H, W) L -> (B, T, 3, H, W) uint8 RGB, continuing each clip's recurrence."""
        b, t, _, h, w = l_full.shape
        ab = self.step_ab(l_full)
        rgb = self.finish(ab.reshape(b * t, 2, *ab.shape[3:]), l_full.reshape(b * t, 1, h, w).to(self.device))
        return rgb.view(b, t, 3, h, w)


def _centre(lab: torch.Tensor) -> torch.Tensor:
    return torch.cat((lab[:, :1] - L_CENTRE, lab[:, 1:]), 1).float()


def _centre_l(l: torch.Tensor) -> torch.Tensor:
    return l - L_CENTRE


# ------------------------------------------------------------------------------ official path
def official_colorize(net: DEVCNet, frames_rgb, reference_rgb: np.ndarray, *, propagate: bool = False,
                      options: DEVCOptions | None = None):
    """Reproduce the official `test.py` on RGB frames: yields 432x768 uint8 RGB (H, W, 3) per frame.

    In propagation mode the official code takes the clip's first frame as the reference; pass it as
    `reference_rgb`.
    """
    opts = replace(options or DEVCOptions(), geometry="official", propagate=propagate)
    engine = DEVCEngine(net, opts)
    engine.start([reference_rgb])
    for frame in frames_rgb:
        l = official_lab(frame)[:, :1]
        yield engine.colorize(l.unsqueeze(0))[0, 0].permute(1, 2, 0).cpu().numpy()
