"""Pixel fidelity: PSNR and SSIM, in float64 (PSNR's sum of squares exactly, in int64).

Both agree with their references frame by frame (PSNR with the textbook / TCVC's `calculate_psnr`,
SSIM with `skimage.metrics.structural_similarity` in Wang et al.'s configuration). On the CPU, SSIM
runs skimage's arithmetic strip by strip on a thread pool, its Gaussian means from OpenCV's separable
float64 filter with scipy's weights on the exact integer planes (equal to skimage to ~1e-14; scipy's
own filter, used before, was 1.7x slower per frame at 854x480); on CUDA the same float64 filter runs in
torch (`_ssim_chunk`), equal to 1e-12.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from vcbench.errors import InputError
from vcbench.metrics.base import FrameMetric
from vcbench.metrics.parallel import thread_map
from vcbench.metrics.sizing import frame_chunks

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
#: Upper bound on float64 working memory per chunk of the torch SSIM (the CUDA path; the CPU path
#: works in row strips of one plane instead). A GPU wants large chunks.
_SSIM_CHUNK_BYTES = {"cpu": 32 << 20, "cuda": 768 << 20}


def _check_pair(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.shape != gt.shape or pred.ndim != 4 or pred.shape[1] != 3:
        raise InputError(f"prediction {tuple(pred.shape)} and GT {tuple(gt.shape)} must both be (N, 3, H, W) "
                         "batches of the same size", hint="pair frames of the same resolution")


def psnr_frames(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-frame RGB PSNR (float64, peak 255) of uint8 (N,3,H,W) batches, capped at PSNR_CAP_DB.

    The squared differences are integers, so their sum is taken exactly in int64 (float64 sums of
    them are exact too, below 2^53: the same MSE as TCVC's float64 mean, bit for bit), in chunks of a
    bounded size instead of float64 copies of the whole batch.
    """
    _check_pair(pred, gt)
    n = pred.shape[0]
    per_frame = pred[0].numel() * 8  # two int32 temporaries
    sums = [((pred[s].to(torch.int32) - gt[s].to(torch.int32)).square().sum(dim=(1, 2, 3), dtype=torch.int64))
            for s in frame_chunks(n, per_frame, pred.device)]
    sse = torch.cat(sums) if sums else torch.zeros(0, dtype=torch.int64, device=pred.device)
    mse = sse.to(torch.float64) / float(pred[0].numel() if n else 1)
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
    """Per-frame SSIM (mean over RGB) of uint8 (N,3,H,W) batches, in float64, as skimage computes it.

    On the CPU this is skimage's arithmetic per channel plane (`_ssim_plane`: OpenCV's float64 Gaussian),
    in row strips that stay in cache and on `cpu_threads()` threads: values equal skimage's to ~1e-14.
    Elsewhere (CUDA) the same float64 filter in torch (`_ssim_chunk`).
    """
    _check_pair(pred, gt)
    h, w = pred.shape[-2:]
    win = 2 * _SSIM_RADIUS + 1
    if h < win or w < win:
        raise InputError(f"SSIM needs frames of at least {win}x{win} pixels, got {w}x{h}",
                         hint="score frames at their real resolution")
    if pred.device.type == "cpu":
        return _ssim_cpu(pred, gt)
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


#: Output rows per strip of the CPU SSIM: its ~10 float64 planes of (rows + 10) x W stay near a core's
#: L2 (854x480, OpenCV filter: 32 rows 90 ms/frame, 64 rows 97, whole plane 200, on a loaded machine).
SSIM_STRIP_ROWS = 64


class _Planes:
    """Per-thread float64 work buffers of the CPU SSIM, reused from strip to strip."""

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        buf = self._bufs.get(name)
        if buf is None or buf.shape != shape:
            buf = self._bufs[name] = np.empty(shape, dtype=np.float64)
        return buf


_local = threading.local()


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    """skimage's mean SSIM of one uint8 channel plane pair (H, W), strip by strip.

    The five Gaussian means (x, y, x^2, y^2, xy) are OpenCV's separable float64 filter with scipy's
    weights (`_gaussian_taps`), fed the exact integer planes (uint8, and uint16 products, at most
    255^2), so no float64 copy of the inputs is made. OpenCV filters rows before columns, scipy
    columns first, so the means differ from skimage's in the last bits only (SSIM within ~1e-14 of
    skimage on real frames; the tests hold it to 1e-12), at twice scipy's speed per frame. Each strip is filtered with
    `SSIM_RADIUS` extra rows above and below, so its kept rows see exactly the neighbours a whole-plane
    filter gives them; borders never matter, since skimage crops the radius on every side.
    """
    import cv2

    planes = getattr(_local, "planes", None)
    if planes is None:
        planes = _local.planes = _Planes()
    taps = getattr(_local, "taps", None)
    if taps is None:
        taps = _local.taps = _gaussian_taps(torch.device("cpu")).numpy()
    r = _SSIM_RADIUS
    h, w = a.shape
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    total = 0.0

    def blur(src: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(src, cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REFLECT)[r:-r, r:w - r]

    for r0 in range(r, h - r, SSIM_STRIP_ROWS):
        r1 = min(r0 + SSIM_STRIP_ROWS, h - r)
        x, y = a[r0 - r:r1 + r], b[r0 - r:r1 + r]
        x16, y16 = x.astype(np.uint16), y.astype(np.uint16)
        ux, uy = blur(x), blur(y)
        uxx, uyy, uxy = blur(x16 * x16), blur(y16 * y16), blur(x16 * y16)
        shape = ux.shape
        # skimage: vx = uxx - ux*ux, vy = uyy - uy*uy, vxy = uxy - ux*uy (cov_norm 1 is exact);
        # S = ((2 ux uy + C1)(2 vxy + C2)) / ((ux^2 + uy^2 + C1)(vx + vy + C2)), the same operations.
        uxuy = np.multiply(ux, uy, out=planes.get("p", shape))
        ux2 = np.multiply(ux, ux, out=planes.get("q", shape))
        uy2 = np.multiply(uy, uy, out=planes.get("s", shape))
        b2 = np.subtract(uxx, ux2, out=planes.get("u", shape))
        tmp = np.subtract(uyy, uy2, out=planes.get("v", shape))
        b2 += tmp
        b2 += c2
        b1 = np.add(ux2, uy2, out=ux2)
        b1 += c1
        a2 = np.subtract(uxy, uxuy, out=tmp)
        a2 *= 2
        a2 += c2
        a1 = np.multiply(uxuy, 2, out=uxuy)
        a1 += c1
        a1 *= a2
        b1 *= b2
        np.divide(a1, b1, out=a1)
        total += float(a1.sum())
    return total / ((h - 2 * r) * (w - 2 * r))


def _ssim_cpu(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """CPU SSIM per frame: one task per (frame, channel) plane on the metric thread pool (OpenCV's
    filter and numpy's loops release the GIL)."""
    p = pred.contiguous().numpy()
    g = gt.contiguous().numpy()
    n = p.shape[0]
    values = thread_map(lambda i: _ssim_plane(p[i // 3, i % 3], g[i // 3, i % 3]), range(3 * n))
    # skimage: the mean of the three channel means
    out = np.array(values, dtype=np.float64).reshape(n, 3).mean(axis=1)
    return torch.from_numpy(out)


class PSNR(FrameMetric):
    """RGB PSNR in dB (float64, peak 255) per frame; identical frames give PSNR_CAP_DB."""

    name = "psnr"

    def frame_values(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return psnr_frames(pred.to(self.device), gt.to(self.device))


class SSIM(FrameMetric):
    """SSIM (Wang 2004; Gaussian 11-tap window, sigma 1.5) per frame, mean over RGB, as skimage's."""

    name = "ssim"

    def frame_values(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return ssim_frames(pred.to(self.device), gt.to(self.device))


__all__ = ["PSNR", "SSIM", "PSNR_CAP_DB", "psnr_frames", "ssim_frames"]
