"""Every metric of protocol vcbench-v1 by name, with what it needs; classes are imported lazily.

`vcbench metrics list` reads this table without importing torch-heavy modules; `create_metric`
imports the one class it builds. Pass the same `shared` dict to every `create_metric` call of one
scoring run (or use `create_metrics`) so FID/KID share one Inception and top1/top5 one VGG19, and
each frame goes through each network once.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from vcbench.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from vcbench.metrics.base import Metric


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is and needs. `higher_is_better` None: ranked by closeness to the GT's value."""

    name: str
    target: str  # "module:Class"
    higher_is_better: bool | None
    weights: tuple[str, ...] = ()  # names in vcbench.weights.REGISTRY
    needs: tuple[str, ...] = ()  # shared inputs the scorer prepares ("flow")
    description: str = ""

    @property
    def direction(self) -> str:
        return {True: "higher", False: "lower", None: "closest to GT"}[self.higher_is_better]


_FLOW_WEIGHTS_NOTE = "flow weights depend on --flow (flownet2: flownet2_things, raft: raft_large; dis/farneback: none)"

METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("psnr", "vcbench.metrics.fidelity:PSNR", True,
               description="RGB PSNR in dB, float64, peak 255, per frame (capped at 100 dB)"),
    MetricInfo("ssim", "vcbench.metrics.fidelity:SSIM", True,
               description="SSIM (Wang 2004: Gaussian 11x11, sigma 1.5), mean over RGB, as skimage"),
    MetricInfo("lpips", "vcbench.metrics.perceptual:LPIPS", False, weights=("alexnet",),
               description="LPIPS AlexNet v0.1 (lpips package's linear layers), inputs in [-1, 1]"),
    MetricInfo("fid", "vcbench.metrics.inception:FID", False, weights=("inception_fid",),
               description="Frechet Inception Distance (pytorch-fid pool3), pooled over all frames"),
    MetricInfo("kid", "vcbench.metrics.inception:KID", False, weights=("inception_fid",),
               description="Kernel Inception Distance (unbiased MMD, cubic kernel, torch-fidelity subsets), pooled"),
    MetricInfo("colorfulness", "vcbench.metrics.colorfulness:Colorfulness", None,
               description="Hasler-Suesstrunk colourfulness; ranked by |log(pred/GT)|, GT value reported beside"),
    MetricInfo("top1", "vcbench.metrics.classification:Top1", True, weights=("vgg19",),
               description="VGG19 top-1 accuracy (labels, else the GT frame's top-1 class)"),
    MetricInfo("top5", "vcbench.metrics.classification:Top5", True, weights=("vgg19",),
               description="VGG19 top-5 accuracy (labels, else the GT frame's top-1 class)"),
    MetricInfo("warp_error", "vcbench.metrics.temporal:WarpError", False, needs=("flow",),
               description=f"Lai et al. 2018 warping error on GT flow with occlusion mask; {_FLOW_WEIGHTS_NOTE}"),
    MetricInfo("flicker", "vcbench.metrics.temporal:Flicker", False, needs=("flow",),
               description=f"mean |warped prev - current| (0-255) on non-occluded pixels; GT value beside; "
                           f"{_FLOW_WEIGHTS_NOTE}"),
    MetricInfo("cdc", "vcbench.metrics.cdc:CDC", False,
               description="TCVC colour distribution consistency (JS divergence of histograms, d=1,2,4)"),
)}

#: Keyword arguments some metrics take and others ignore (the scorer passes them to every metric).
_COMMON_KWARGS = frozenset({"allow_unverified", "shared", "weights_path"})


def metric_names() -> list[str]:
    """Names in the protocol's order (the default metric set of `vcbench score`)."""
    return list(METRICS)


def get_info(name: str) -> MetricInfo:
    """The MetricInfo of `name`; InputError listing the valid names otherwise."""
    info = METRICS.get(name)
    if info is None:
        raise InputError(f"unknown metric {name!r}", hint=f"choose from {', '.join(METRICS)}")
    return info


def metric_class(name: str) -> type[Metric]:
    """Import and return the class behind `name`."""
    module, _, attr = get_info(name).target.partition(":")
    return getattr(importlib.import_module(module), attr)


def create_metric(name: str, device: str | torch.device = "cpu", **kwargs: Any) -> Metric:
    """A new instance of metric `name` on `device`.

    `allow_unverified`, `weights_path` and `shared` (a dict shared by the metrics of one run, so they
    share networks) go to the metrics that take them and are dropped for the others; any other
    keyword must be one the metric accepts.
    """
    cls = metric_class(name)
    accepted = _init_params(cls)
    kw: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in accepted:
            kw[key] = value
        elif key not in _COMMON_KWARGS:
            raise TypeError(f"metric {name!r} takes no option {key!r}")
    if "device" in accepted:
        kw["device"] = device
    return cls(**kw)


def _init_params(cls: type) -> set[str]:
    """Keyword names a class's constructor chain accepts (following **kwargs up to the bases)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names.update(k for k, p in params.items()
                     if k != "self" and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL))
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break
    return names


def create_metrics(names: Sequence[str], device: str | torch.device = "cpu", **kwargs: Any) -> dict[str, Metric]:
    """{name: metric} for several metrics sharing their networks (one `shared` dict)."""
    shared = kwargs.pop("shared", None)
    shared = {} if shared is None else shared
    return {n: create_metric(n, device, shared=shared, **kwargs) for n in names}
