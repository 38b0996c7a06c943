"""Top-1 / top-5 classification accuracy of colourised frames with torchvision's VGG19 (IMAGENET1K_V1).

A colourisation that keeps objects recognisable scores high. With ground-truth labels (the ImageNet
ctest10k list, passed per frame as `FrameContext.gt_cache["labels"]`) this is plain accuracy; on
video without labels, the label of a frame is the classifier's top-1 on the GT frame, and top-5
asks whether it is among the prediction's five best classes. Pre-processing is the weights' own
transforms (resize the short side to 256 with antialiased bilinear, centre crop 224, ImageNet
mean/std), applied batched on the device. Top1 and Top5 share one `VGG19Classifier`, which
remembers the last batch's logits, so each frame goes through the network once.

The network and those transforms are built here, layer for layer and operation for operation,
instead of imported from torchvision: its import pulls every model family and torch._dynamo (~3 s of
start-up on 2 cores). tests/test_vgg19.py holds both bit-equal to torchvision's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vcbench.errors import InputError
from vcbench.metrics.base import Metric
from vcbench.metrics.context import FrameContext
from vcbench.metrics.network import SharedNetwork, forward_in_chunks, load_network, shared_network
from vcbench.weights import WeightFile, build_loaded

# torchvision's VGG "E" configuration (VGG19): conv widths, "M" a 2x2 max-pool.
_VGG19_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                 512, 512, 512, 512, "M")
# IMAGENET1K_V1's evaluation transforms.
_RESIZE, _CROP = 256, 224
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

#: Per-frame true ImageNet labels (int64, 0..999) when the benchmark set has them.
LABELS_KEY = "labels"
#: Per-frame top-1 class of the GT frame, the label on video without labels (cached by the scorer).
GT_TOP1_KEY = "vgg19_gt_top1"


class VGG19(torch.nn.Module):
    """torchvision's `vgg19` (no BatchNorm) under its attribute names and indices (`features.0` ...
    `classifier.6`), so its state dict loads strictly; dropout is left out (inference only)."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG19_LAYERS:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(cin, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Identity(),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Identity(), nn.Linear(4096, 1000))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def imagenet_eval_input(frames: torch.Tensor) -> torch.Tensor:
    """IMAGENET1K_V1's transforms on a (N, 3, H, W) batch, as torchvision's tensor path runs them:
    short side to 256 (long side truncated), bilinear with antialias on float32 (uint8 frames rounded
    back to uint8), centre crop 224 (offsets rounded half to even, as Python's round), /255 for
    integer input, then (x - mean) / std in place."""
    h, w = int(frames.shape[-2]), int(frames.shape[-1])
    short, long = min(h, w), max(h, w)
    new_long = int(_RESIZE * long / short)
    size = [new_long, _RESIZE] if w <= h else [_RESIZE, new_long]
    x, owned = frames, False  # owned: x is a new tensor, normalised in place (else a copy is)
    if [h, w] != size:
        y = torch.nn.functional.interpolate(frames if frames.is_floating_point() else frames.to(torch.float32),
                                            size=size, mode="bilinear", align_corners=False, antialias=True)
        x, owned = (y if frames.is_floating_point() else torch.round(y).to(frames.dtype)), True
    top, left = int(round((size[0] - _CROP) / 2.0)), int(round((size[1] - _CROP) / 2.0))
    x = x[..., top:top + _CROP, left:left + _CROP]
    if not x.is_floating_point():
        x, owned = x.to(torch.float32) / float(torch.iinfo(x.dtype).max), True
    mean = torch.as_tensor(_MEAN, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    std = torch.as_tensor(_STD, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return (x if owned else x.clone()).sub_(mean).div_(std)


class VGG19Classifier(SharedNetwork):
    """torchvision VGG19 with IMAGENET1K_V1's transforms; weights through vcbench's resolver."""

    def __init__(self, device: str | torch.device = "cpu", *, weights_path: str | Path | None = None,
                 allow_unverified: bool = False, batch_size: int = 16) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.resolved, self.net = load_network("vgg19", lambda sd: build_loaded(VGG19, sd),
                                               self.device, what="a torchvision VGG19", weights_path=weights_path,
                                               allow_unverified=allow_unverified)

    @torch.inference_mode()
    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 1000) float32 logits of uint8 RGB (N, 3, H, W) frames (the last batch is remembered)."""
        return self.remembered(frames, lambda f: forward_in_chunks(self.net, f, self.device, self.batch_size,
                                                                   imagenet_eval_input, 1000))

    def top1(self, frames: torch.Tensor) -> torch.Tensor:
        return self.logits(frames).argmax(dim=1)

    def topk(self, frames: torch.Tensor, k: int) -> torch.Tensor:
        return self.logits(frames).topk(k, dim=1).indices


class _TopK(Metric):
    k: int = 1
    gt_side_key = GT_TOP1_KEY
    gt_side_superseded_by = LABELS_KEY  # true labels make the GT's own top-1 unnecessary

    def __init__(self, device: str | torch.device = "cpu", *, weights_path: str | Path | None = None,
                 allow_unverified: bool = False, classifier: VGG19Classifier | None = None,
                 shared: dict | None = None) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.classifier = classifier or shared_network(shared, VGG19Classifier, self.device, weights_path=weights_path,
                                                       allow_unverified=allow_unverified)

    def weights_used(self) -> dict[str, WeightFile]:
        return self.classifier.weights_used()

    def gt_side(self, gt: torch.Tensor) -> torch.Tensor:
        """Per-frame top-1 class of the GT frames (N,) int64, what the scorer caches."""
        return self.classifier.top1(gt)

    def labels(self, gt: torch.Tensor, ctx: FrameContext | None) -> torch.Tensor:
        """True labels when given, else the GT frames' top-1 (from the cache when the scorer has it)."""
        cache = ctx.gt_cache if ctx is not None else {}
        for key in (LABELS_KEY, GT_TOP1_KEY):
            if cache.get(key) is not None:
                lab = cache[key].to(self.device).long().reshape(-1)
                if lab.shape[0] != gt.shape[0]:
                    raise InputError(f"{key} has {lab.shape[0]} entries for a batch of {gt.shape[0]} frames")
                if ((lab < 0) | (lab >= 1000)).any():
                    raise InputError(f"{key} holds classes outside ImageNet's 0..999",
                                     hint="give ImageNet-1k class indices")
                return lab
        return self.gt_side(gt)

    def accumulate(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext) -> None:
        lab = self.labels(gt, ctx)
        best = self.classifier.topk(pred, self.k)
        hit = (best == lab[:, None]).any(dim=1)
        self._current.extend(float(v) for v in hit.to(torch.float64).cpu().tolist())


class Top1(_TopK):
    """1 when the prediction's top-1 class is the label, else 0; mean = top-1 accuracy."""

    name = "top1"
    k = 1


class Top5(_TopK):
    """1 when the label is among the prediction's five best classes, else 0; mean = top-5 accuracy."""

    name = "top5"
    k = 5
