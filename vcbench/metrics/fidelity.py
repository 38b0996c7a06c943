"""Pixel fidelity: PSNR and SSIM, batched on the device in float64.

Both agree with their references frame by frame (PSNR with the textbook / TCVC's `calculate_psnr`,
SSIM with `skimage.metrics.structural_similarity` in Wang et al.'s configuration) to 1e-6; the
batched paths compute exactly the same operations per frame, so batching changes nothing beyond
float64 rounding (the tests check 1e-10).
"""

from __future__ import annotations

import torch

from vcbench.errors import InputError
from vcbench.metrics.base import FrameContext, Metric

#: Per-frame PSNR of identical frames (and anything above it) is reported as this (JSON has no infinity).
PSNR_CAP_DB = 100.0

# Wang et al. 2004 as skimage runs it with gaussian_weights=True: sigma 1.5, scipy's truncate=3.5
# (radius int(3.5 * 1.5 + 0.5) = 5, an 11-tap window), mode "reflect", K1 .01, K2 .03, population
# covariance, and a crop of the radius on every side before averaging.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
DATA_RANGE = 255.0
_SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
#: Upper bound on float64 working memory per SSIM chunk (frames are processed in chunks below it).
#: On the CPU a chunk that stays near the caches is ~6x faster than one large pass (measured: 16
#: frames at 256x144, 0.84 s with 256 MiB chunks, 0.14 s with 32 MiB); a GPU wants large chunks.
_SSIM_CHUNK_BYTES = {"cpu": 32 << 20, "cuda": 768 << 20}


def _check_pair(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.shape != gt.shape or pred.ndim != 4 or pred.shape[1] != 3:
        raise InputError(f"prediction {tuple(pred.shape)} and GT {tuple(gt.shape)} must both be (N, 3, H, W) "
                         "batches of the same size", hint="pair frames of the same resolution")


def psnr_frames(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-frame RGB PSNR (float64, peak 255) of uint8 (N,3,H,W) batches, capped at PSNR_CAP_DB."""
    _check_pair(pred, gt)
    diff = pred.to(torch.float64) - gt.to(torch.float64)
    mse = diff.square().mean(dim=(1, 2, 3))
    # 20 log10(255 / sqrt(mse)), the form TCVC's calculate_psnr uses; mse == 0 gives +inf -> cap.
    psnr = 20.0 * torch.log10(DATA_RANGE / torch.sqrt(mse))
    return torch.clamp(psnr, max=PSNR_CAP_DB)


def _gaussian_taps(device: torch.device) -> torch.Tensor:
    """scipy.ndimage's normalised 1-D Gaussian kernel (sigma 1.5, radius 5) in float64."""
    x = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=torch.float64, device=device)
    phi = torch.exp(-0.5 / (SSIM_SIGMA * SSIM_SIGMA) * x * x)
    return phi / phi.sum()


def _reflect_index(n: int, r: int, device: torch.device) -> torch.Tensor:
    """Indices implementing scipy.ndimage's "reflect" boundary (d c b a | a b c d | d c b a), any n >= 1.

    torch's own "reflect" pad omits the edge sample (scipy's "mirror"), so it cannot be used here.
    """
    i = torch.arange(-r, n + r, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def _gaussian_filter(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian over H then W of (N, C, H, W) float64, boundary "reflect", same size out.

    Written as a weighted sum of 11 shifted views rather than a depthwise float64 conv2d: torch has no
    fast float64 grouped convolution on the CPU, and this is ~3x faster there with the same result to
    rounding (about 1e-18 relative).
    """
    r = _SSIM_RADIUS
    for dim in (2, 3):
        n = x.shape[dim]
        padded = x.index_select(dim, _reflect_index(n, r, x.device))
        out = padded.narrow(dim, 0, n) * taps[0]
        for k in range(1, taps.numel()):
            out.add_(padded.narrow(dim, k, n) * taps[k])
        x = out
    return x


def _ssim_chunk(x: torch.Tensor, y: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (N, 15, H, W)
    f = _gaussian_filter(stack, taps)
    ux, uy, uxx, uyy, uxy = f.split(3, dim=1)
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    r = _SSIM_RADIUS
    s = s[:, :, r:s.shape[2] - r, r:s.shape[3] - r]
    return s.mean(dim=(2, 3)).mean(dim=1)  # per channel (as skimage), then over RGB


def ssim_frames(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM (mean over RGB) of uint8 (N,3,H,W) batches, in float64, as skimage computes it."""
    _check_pair(pred, gt)
    h, w = pred.shape[-2:]
    win = 2 * _SSIM_RADIUS + 1
    if h < win or w < win:
        raise InputError(f"SSIM needs frames of at least {win}x{win} pixels, got {w}x{h}",
                         hint="score frames at their real resolution")
    taps = _gaussian_taps(pred.device)
    # ~4 float64 copies of the 15-channel stack live at once (stack, H-padded, filtered, W-padded).
    per_frame = 4 * 15 * (h + 2 * _SSIM_RADIUS) * (w + 2 * _SSIM_RADIUS) * 8
    step = max(1, _SSIM_CHUNK_BYTES.get(pred.device.type, 32 << 20) // per_frame)
    out = []
    for i in range(0, pred.shape[0], step):
        x = pred[i:i + step].to(torch.float64)
        y = gt[i:i + step].to(torch.float64)
        out.append(_ssim_chunk(x, y, taps))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64, device=pred.device)


class PSNR(Metric):
    """RGB PSNR in dB (float64, peak 255) per frame; identical frames give PSNR_CAP_DB."""

    name = "psnr"
    higher_is_better = True

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.device = torch.device(device)

    def update(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext | None = None) -> None:
        vals = psnr_frames(pred.to(self.device), gt.to(self.device))
        self._current.extend(float(v) for v in vals.cpu().tolist())


class SSIM(Metric):
    """SSIM (Wang 2004; Gaussian 11-tap window, sigma 1.5) per frame, mean over RGB, as skimage's."""

    name = "ssim"
    higher_is_better = True

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.device = torch.device(device)

    def update(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext | None = None) -> None:
        vals = ssim_frames(pred.to(self.device), gt.to(self.device))
        self._current.extend(float(v) for v in vals.cpu().tolist())


__all__ = ["PSNR", "SSIM", "PSNR_CAP_DB", "psnr_frames", "ssim_frames"]
