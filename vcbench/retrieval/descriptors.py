"""Image descriptors for reference retrieval: one L2-normalised float32 vector per image.

`vgg19`: torchvision VGG19 (ImageNet weights through the resolver) on the gray-converted image,
relu5_4 averaged over space, 512-d. Gray conversion keeps the retrieval about content and layout,
not colour, because at colorization time the query is a gray frame (DEVC retrieves this way).
`weightfree` / `weightfree_gray`: no network, for offline builds: an ab colour histogram (colour
variant only), an L histogram, a gradient-orientation histogram on a 2x2 grid and an 8x8 layout of
L, each block normalised so inner products compare like with like (Hellinger for histograms).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vcbench import weights as vw
from vcbench.errors import InputError, VcbenchError, WeightsError
from vcbench.lab import lab_to_rgb, rgb_to_lab
from vcbench.registry import Registry, Spec

Images = np.ndarray | Sequence[np.ndarray]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG19_RELU5_4 = 36  # torchvision vgg19().features[:36] ends with the ReLU after conv5_4


class Descriptor(ABC):
    """One L2-normalised float32 vector per image, computed `batch` images at a time."""

    name: str
    dim: int
    batch: int

    def weights_used(self) -> dict[str, vw.WeightFile]:
        return {}

    def __call__(self, images: Images) -> np.ndarray:
        """(N, dim) float32 descriptors of N (H, W, 3) uint8 images (sizes may differ)."""
        ims = _as_list(images)
        out = [self._batch(ims[i:i + self.batch]) for i in range(0, len(ims), self.batch)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)

    @abstractmethod
    def _batch(self, ims: list[np.ndarray]) -> np.ndarray:
        """Descriptors of one non-empty batch of checked images."""


def _as_list(images: Images) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected (N, H, W, 3) uint8 images, got {images.shape} {images.dtype}")
        return list(images)
    out = [np.asarray(im) for im in images]
    for im in out:
        if im.ndim != 3 or im.shape[-1] != 3 or im.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 images, got {im.shape} {im.dtype}")
    return out


def _resize_batch(images: list[np.ndarray], size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(N, 3, h, w) float32 in [0, 1] on `device`. Each image is resized on its own (sizes differ)
    with OpenCV on the CPU, where the images were decoded: area averaging when shrinking (no
    aliasing), bilinear when enlarging."""
    import cv2

    h, w = size
    out = []
    for im in images:
        if im.shape[:2] != (h, w):
            shrink = im.shape[0] >= h and im.shape[1] >= w
            im = cv2.resize(np.ascontiguousarray(im), (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out.append(im)
    x = torch.from_numpy(np.stack(out)).to(device)
    return x.permute(0, 3, 1, 2).float() / 255.0


def to_gray_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """Gray version of RGB in [0, 1] (..., 3, H, W): the Lab lightness with a = b = 0, back to RGB
    (what a colorization model's L input looks like)."""
    lab = rgb_to_lab(rgb)
    lab = torch.cat([lab[..., :1, :, :], torch.zeros_like(lab[..., 1:, :, :])], dim=-3)
    return lab_to_rgb(lab)


def _l2n(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


class WeightFreeDescriptor(Descriptor):
    """Colour/texture histograms plus a coarse lightness layout; no weights, deterministic."""

    SIZE = (128, 128)
    AB_BINS, AB_RANGE = 8, 80.0
    L_BINS = 16
    ORI_BINS, GRID = 8, 2
    LAYOUT = 8
    # Share of each block in the squared norm of the descriptor (colour, L, gradient, layout).
    WEIGHTS = (0.35, 0.15, 0.2, 0.3)

    def __init__(self, gray: bool = False, device: str | torch.device = "cpu", batch: int = 64):
        self.gray = gray
        self.name = "weightfree_gray" if gray else "weightfree"
        self.device = torch.device(device)
        self.batch = batch
        self.dim = (0 if gray else self.AB_BINS**2) + self.L_BINS + self.ORI_BINS * self.GRID**2 + self.LAYOUT**2

    @torch.no_grad()
    def _batch(self, ims: list[np.ndarray]) -> np.ndarray:
        x = _resize_batch(ims, self.SIZE, self.device).double()
        lab = rgb_to_lab(x)
        n = lab.shape[0]
        L, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
        blocks = []
        if not self.gray:
            nb = self.AB_BINS
            ia = ((a.clamp(-self.AB_RANGE, self.AB_RANGE - 1e-6) + self.AB_RANGE) / (2 * self.AB_RANGE) * nb).long()
            ib = ((b.clamp(-self.AB_RANGE, self.AB_RANGE - 1e-6) + self.AB_RANGE) / (2 * self.AB_RANGE) * nb).long()
            blocks.append(self._hist((ia * nb + ib).flatten(1), nb * nb, None))
        il = (L.clamp(0, 100 - 1e-6) / 100 * self.L_BINS).long()
        blocks.append(self._hist(il.flatten(1), self.L_BINS, None))
        # Gradient orientation (unsigned) weighted by magnitude, in a GRID x GRID layout of cells.
        kx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=L.dtype, device=L.device)
        Lp = F.pad(L[:, None], (1, 1, 1, 1), mode="replicate")
        gx = F.conv2d(Lp, kx.view(1, 1, 3, 3))[:, 0]
        gy = F.conv2d(Lp, kx.t().reshape(1, 1, 3, 3))[:, 0]
        mag = torch.hypot(gx, gy)
        ori = torch.remainder(torch.atan2(gy, gx), torch.pi)
        io = (ori / torch.pi * self.ORI_BINS).long().clamp_(max=self.ORI_BINS - 1)
        h, w = L.shape[-2:]
        cy = (torch.arange(h, device=L.device) * self.GRID // h).view(h, 1)
        cx = (torch.arange(w, device=L.device) * self.GRID // w).view(1, w)
        cell = (cy * self.GRID + cx).expand(h, w)
        blocks.append(self._hist((cell * self.ORI_BINS + io).flatten(1), self.ORI_BINS * self.GRID**2, mag.flatten(1)))
        layout = F.adaptive_avg_pool2d(L[:, None], self.LAYOUT).flatten(1)
        blocks.append(_l2n(layout - layout.mean(dim=1, keepdim=True)))
        weights = self.WEIGHTS[1:] if self.gray else self.WEIGHTS
        desc = torch.cat([blk * (wt ** 0.5) for blk, wt in zip(blocks, weights)], dim=1)
        assert desc.shape == (n, self.dim)
        return _l2n(desc).float().cpu().numpy()

    @staticmethod
    def _hist(idx: torch.Tensor, bins: int, weight: torch.Tensor | None) -> torch.Tensor:
        """Per-row histogram, L1-normalised then square-rooted (unit L2 norm: Hellinger kernel)."""
        w = torch.ones_like(idx, dtype=torch.float64) if weight is None else weight.double()
        hist = torch.zeros(idx.shape[0], bins, dtype=torch.float64, device=idx.device).scatter_add_(1, idx, w)
        return (hist / hist.sum(dim=1, keepdim=True).clamp_min(1e-12)).sqrt()


class VGGDescriptor(Descriptor):
    """torchvision VGG19 relu5_4, spatially averaged, L2-normalised, on gray-converted input."""

    name = "vgg19"
    dim = 512
    SIZE = (224, 224)

    def __init__(self, device: str | torch.device = "cpu", *, weights_path: str | None = None,
                 allow_unverified: bool = False, batch: int = 32, download: bool = True, quiet: bool = False):
        from torchvision.models import vgg  # torchvision's import takes ~1 s; weight-free builds skip it

        self.device = torch.device(device)
        self.batch = batch
        self.resolved = vw.resolve("vgg19", weights_path, allow_unverified=allow_unverified, download=download,
                                quiet=quiet)
        state = vw.load_state_dict(self.resolved.path)
        # Only the convolutional trunk is used: build torchvision's VGG19 `features` without random
        # init (meta device) and load its keys strictly; the classifier's weights are not needed.
        with torch.device("meta"):
            features = vgg.make_layers(vgg.cfgs["E"], batch_norm=False)
        conv = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        try:
            features.load_state_dict(conv, strict=True, assign=True)
        except RuntimeError as exc:
            raise WeightsError(f"not a torchvision VGG19 state dict ({str(exc).splitlines()[0]})",
                               path=self.resolved.path, hint="use vgg19-dcbb9e9d.pth from download.pytorch.org") from exc
        self.trunk = features[:VGG19_RELU5_4].eval().to(self.device)
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def weights_used(self) -> dict[str, vw.WeightFile]:
        return self.resolved.used()

    @torch.no_grad()
    def _batch(self, ims: list[np.ndarray]) -> np.ndarray:
        x = to_gray_rgb(_resize_batch(ims, self.SIZE, self.device))
        feat = self.trunk((x - self.mean) / self.std)
        return _l2n(feat.mean(dim=(2, 3))).float().cpu().numpy()


@dataclass(frozen=True)
class DescriptorSpec(Spec):
    """One descriptor: the constructor options that make it (weightfree_gray is WeightFreeDescriptor
    with gray=True), the weight files it loads (vcbench.weights registry names; empty = none, so it
    takes no weight options) and whether a build task running it should ask the cluster for a GPU."""

    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    weights: tuple[str, ...] = ()
    needs_gpu: bool = False


def _unknown(name: str, names: list[str]) -> VcbenchError:
    return InputError(f"unknown descriptor {name!r}", hint=f"choose one of {', '.join(names)}")


DESCRIPTORS: Registry[DescriptorSpec] = Registry("descriptor", DescriptorSpec, base=Descriptor, unknown=_unknown)
DESCRIPTORS.add(DescriptorSpec("weightfree", obj=WeightFreeDescriptor, options={"gray": False}))
DESCRIPTORS.add(DescriptorSpec("weightfree_gray", obj=WeightFreeDescriptor, options={"gray": True}))
DESCRIPTORS.add(DescriptorSpec("vgg19", obj=VGGDescriptor, weights=("vgg19",), needs_gpu=True))


def get_descriptor(name: str, device: str | torch.device = "cpu", *, allow_unverified: bool = False,
                   **kwargs: Any) -> Descriptor:
    """A descriptor by name (`weightfree`, `weightfree_gray`, `vgg19`); `allow_unverified` goes to
    the descriptors whose spec lists weights, other keyword arguments to the constructor."""
    spec = DESCRIPTORS.spec(name)
    if spec.weights:
        kwargs["allow_unverified"] = allow_unverified
    return DESCRIPTORS.create(name, device=device, **spec.options, **kwargs)
