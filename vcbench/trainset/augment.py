"""DEVC-style augmentation and pseudo-video, deterministic per (seed, clip id).

Every random choice for an output clip comes from one numpy Generator seeded from a hash of
(seed, clip id), so a clip's pixels do not depend on which worker made it, in which order, or how
many clips were built before it. The parameters drawn are plain JSON (recorded in the manifest);
the smooth random fields are stored as the seed that regenerates them.

- Video clips (variant >= 1): one random crop (80-100 % of each side, aspect kept) resized back, a
  horizontal flip (p = 0.5), one smooth elastic warp (the same for every frame, so the clip's own
  motion is untouched), a brightness gain and mild pixel noise (uniform, sigma 0-3 grey levels). Variant 0 is the clip as cut.
- Pseudo-video from a still: frame t is the still warped by t times a smooth random flow
  (uniform noise filtered by a Gaussian of sigma 50 px, as DEVC does for ImageNet images) plus a
  slow global drift, with a per-frame brightness jitter.
Warping is `vcbench.flow.warp.backward_warp`, the project's only warp.
"""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from vcbench.flow.warp import backward_warp
from vcbench.trainset.clips import resize_fill

FIELD_SIGMA = 50.0  # px, DEVC's smoothing of the random flow
FIELD_GRID = 4  # the field is drawn on a grid this much coarser, then upsampled (see smooth_field)


def rng_for(seed: int, clip_id: str) -> np.random.Generator:
    """The Generator for one output clip: independent of worker, order and process."""
    digest = hashlib.sha256(f"vcbench-augment:{int(seed)}:{clip_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def smooth_field(field_seed: int, height: int, width: int, amplitude: float) -> np.ndarray:
    """(2, H, W) float32 flow: uniform noise filtered by a Gaussian (sigma 50 px), scaled so its
    largest component is `amplitude` pixels.

    The noise is drawn and filtered on a grid 4x coarser (sigma 12.5 cells) and upsampled bicubically:
    after a sigma-50 blur nothing finer than ~50 px survives, so the field is the same kind of field
    at 1/64 of the cost (the full-resolution filter dominated augmentation time)."""
    rng = np.random.default_rng(field_seed)
    gh, gw = max(2, -(-height // FIELD_GRID)), max(2, -(-width // FIELD_GRID))
    out = np.empty((2, height, width), np.float32)
    for c in range(2):
        f = gaussian_filter(rng.uniform(-1.0, 1.0, (gh, gw)), sigma=FIELD_SIGMA / FIELD_GRID, mode="reflect")
        f = cv2.resize(f.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
        peak = float(np.max(np.abs(f)))
        out[c] = (f / peak * amplitude) if peak > 0 else 0.0
    return out


def _warp(frames: np.ndarray, flows: np.ndarray) -> np.ndarray:
    """Backward-warp uint8 frames (T, H, W, 3) by flows (T, 2, H, W) or by one flow (2, H, W) shared
    by all frames (then the frames go through as the channels of one image: one sampling grid)."""
    t, h, w, _ = frames.shape
    img = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).to(torch.float32)
    fl = torch.from_numpy(np.ascontiguousarray(flows, dtype=np.float32))
    if fl.dim() == 3:
        img, fl = img.reshape(1, t * 3, h, w), fl[None]
    with torch.no_grad():
        out = backward_warp(img, fl).reshape(t, 3, h, w)
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _add_noise(frames: np.ndarray, gains: np.ndarray, noise_sigma: float, noise_seed: int) -> np.ndarray:
    out = frames.astype(np.float32)
    out *= gains.astype(np.float32)[:, None, None, None]
    if noise_sigma > 0:
        # Uniform noise with standard deviation `noise_sigma` (half-width sigma*sqrt(3)): for a few
        # grey levels of sensor-like noise its shape does not matter, and numpy draws uniform
        # float32 about 4x faster than normal, which dominated augmentation time.
        noise = np.random.default_rng(noise_seed).random(size=out.shape, dtype=np.float32)
        noise -= np.float32(0.5)
        noise *= np.float32(2.0 * np.sqrt(3.0) * noise_sigma)
        out += noise
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


# ---------------------------------------------------------------------------------- video clips
def draw_video_params(rng: np.random.Generator, height: int, width: int) -> dict:
    scale = float(rng.uniform(0.8, 1.0))
    ch, cw = max(1, round(height * scale)), max(1, round(width * scale))
    return {
        "kind": "video-augment",
        "crop": [int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1)), ch, cw],
        "flip": bool(rng.random() < 0.5),
        "elastic_amplitude": round(float(rng.uniform(0.0, 6.0)), 6),
        "elastic_seed": int(rng.integers(0, 2**63 - 1)),
        "brightness_gain": round(float(rng.uniform(0.8, 1.2)), 6),
        "noise_sigma": round(float(rng.uniform(0.0, 3.0)), 6),
        "noise_seed": int(rng.integers(0, 2**63 - 1)),
    }


def augment_video(frames: np.ndarray, params: dict) -> np.ndarray:
    """Apply `draw_video_params`' choices to a (T, H, W, 3) uint8 clip; same size out."""
    t, h, w, _ = frames.shape
    top, left, ch, cw = params["crop"]
    out = np.stack([cv2.resize(f[top:top + ch, left:left + cw], (w, h), interpolation=cv2.INTER_CUBIC)
                    if (ch, cw) != (h, w) else f for f in frames])
    if params["flip"]:
        out = np.ascontiguousarray(out[:, :, ::-1])
    if params["elastic_amplitude"] > 0:
        field = smooth_field(params["elastic_seed"], h, w, params["elastic_amplitude"])
        out = _warp(out, field)
    gains = np.full(t, params["brightness_gain"], np.float64)
    return _add_noise(out, gains, params["noise_sigma"], params["noise_seed"])


# --------------------------------------------------------------------------------- pseudo-video
def draw_pseudo_params(rng: np.random.Generator, length: int) -> dict:
    steps = rng.normal(0.0, 0.01, size=length)
    steps[0] = 0.0
    gains = np.clip(1.0 + np.cumsum(steps), 0.85, 1.15) * float(rng.uniform(0.9, 1.1))
    return {
        "kind": "pseudo-video",
        "flip": bool(rng.random() < 0.5),
        "field_seed": int(rng.integers(0, 2**63 - 1)),
        "field_amplitude": round(float(rng.uniform(0.3, 1.5)), 6),  # px per frame
        "drift": [round(float(v), 6) for v in rng.uniform(-1.0, 1.0, size=2)],  # px per frame (u, v)
        "brightness_gains": [round(float(g), 6) for g in gains],
    }


def pseudo_video(still: np.ndarray, params: dict, length: int, height: int, width: int) -> np.ndarray:
    """(length, H, W, 3) uint8: frame t is the still warped by t x (smooth field + drift)."""
    base = resize_fill(still, height, width)
    if params["flip"]:
        base = np.ascontiguousarray(base[:, ::-1])
    field = smooth_field(params["field_seed"], height, width, params["field_amplitude"])
    field[0] += params["drift"][0]
    field[1] += params["drift"][1]
    ts = np.arange(length, dtype=np.float32)[:, None, None, None]
    flows = ts * field[None]
    frames = _warp(np.broadcast_to(base, (length, height, width, 3)), flows)
    return _add_noise(frames, np.asarray(params["brightness_gains"], np.float64), 0.0, 0)


def params_json(params: dict) -> str:
    """Canonical JSON for the manifest (sorted keys, so equal parameters give equal bytes)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))
