"""Every metric of protocol vcbench-v1 by name, with every fact about it; classes are imported lazily.

This is the one home of a metric's facts (direction, pooled or per pair, what it needs, its GT twin,
its frame floor, its leaderboard column): the metric classes read them through `Metric.spec`, and
the suite, the CLI and the reports read them here. `vcbench metrics list` reads this table without
importing torch-heavy modules; `create_metric` imports the one class it builds. Pass the same
`shared` dict to every `create_metric` call of one scoring run (or use `create_metrics`) so FID/KID
share one Inception and top1/top5 one VGG19, and each frame goes through each network once.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Sequence

from vcbench.errors import InputError
from vcbench.registry import Registry, Spec

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from vcbench.metrics.base import Metric


class Direction(Enum):
    """How a metric ranks, with each rendering the CLI and the reports print."""

    #: (higher_is_better, word, listing, table, arrow, latex_arrow)
    HIGHER = (True, "higher", "higher", "higher better", "\u2191", r"$\uparrow$")
    LOWER = (False, "lower", "lower", "lower better", "\u2193", r"$\downarrow$")
    CLOSER = (None, "closer", "closest to GT", "closer to GT", "\u2248GT", r"$\approx$GT")

    def __init__(self, higher_is_better: bool | None, word: str, listing: str, table: str, arrow: str,
                 latex_arrow: str) -> None:
        self.higher_is_better = higher_is_better
        self.word = word  # stats and the leaderboard's JSON
        self.listing = listing  # `vcbench metrics list`
        self.table = table  # `vcbench score`'s table
        self.arrow = arrow  # leaderboard headers
        self.latex_arrow = latex_arrow

    @classmethod
    def of(cls, higher_is_better: bool | None) -> Direction:
        return {True: cls.HIGHER, False: cls.LOWER, None: cls.CLOSER}[higher_is_better]


@dataclass(frozen=True)
class MetricInfo(Spec):
    """What a metric is and needs. `higher_is_better` None: ranked by closeness to the GT's value."""

    name: str
    target: str = field()  # "module:Class"; field(): no default (Spec's "" would be inherited)
    higher_is_better: bool | None
    weights: tuple[str, ...] = ()  # names in vcbench.weights.REGISTRY
    needs: tuple[str, ...] = ()  # shared inputs the scorer prepares ("flow")
    description: str = ""
    #: The dataset value pools all frames (FID, KID): no per-clip value, no interval, frame count shown.
    pooled: bool = False
    #: One value per consecutive frame pair (warp error, flicker): plotted as curves.
    per_pair: bool = False
    #: The GT's own value is reported beside the prediction's (a GT twin in the suite).
    gt_twin: bool = False
    #: The score table adds the ratio prediction / GT (colourfulness).
    gt_ratio: bool = False
    #: A pooled value is biased below this many frames (FID: the 2048-d covariance is rank-deficient).
    frame_floor: int | None = None
    #: Frames a clip needs for a defined per-clip value (CDC's d=4 term needs 5).
    min_frames: int = 1
    #: Leaderboard column rank; None sorts after the ranked ones, by name.
    column: int | None = None
    #: The metric itself reads the GT's frames (CDC compares the prediction's frames with each other:
    #: False). A GT twin, GT flow or GT side needs them regardless; with none of those, `vcbench score`
    #: decodes no GT frame (`Scorer.reads_gt`).
    reads_gt: bool = True

    @property
    def direction(self) -> Direction:
        return Direction.of(self.higher_is_better)


_FLOW_WEIGHTS_NOTE = "flow weights depend on --flow (flownet2: flownet2_things, raft: raft_large; dis/farneback: none)"


def _unknown_metric(name: str, names: list[str]) -> InputError:
    return InputError(f"unknown metric {name!r}", hint=f"choose from {', '.join(names)}")


METRICS: Registry[MetricInfo] = Registry("metric", MetricInfo, unknown=_unknown_metric)
for _info in (
    MetricInfo("psnr", "vcbench.metrics.fidelity:PSNR", True, column=0,
               description="RGB PSNR in dB, float64, peak 255, per frame (capped at 100 dB)"),
    MetricInfo("ssim", "vcbench.metrics.fidelity:SSIM", True, column=1,
               description="SSIM (Wang 2004: Gaussian 11x11, sigma 1.5), mean over RGB, as skimage"),
    MetricInfo("lpips", "vcbench.metrics.perceptual:LPIPS", False, weights=("alexnet",), column=2,
               description="LPIPS AlexNet v0.1 (lpips package's linear layers), inputs in [-1, 1]"),
    MetricInfo("fid", "vcbench.metrics.inception:FID", False, weights=("inception_fid",), pooled=True,
               frame_floor=2048, column=4,
               description="Frechet Inception Distance (pytorch-fid pool3), pooled over all frames"),
    MetricInfo("kid", "vcbench.metrics.inception:KID", False, weights=("inception_fid",), pooled=True, column=5,
               description="Kernel Inception Distance (unbiased MMD, cubic kernel, torch-fidelity subsets), pooled"),
    MetricInfo("colorfulness", "vcbench.metrics.colorfulness:Colorfulness", None, gt_twin=True, gt_ratio=True,
               column=3,
               description="Hasler-Suesstrunk colourfulness; ranked by |log(pred/GT)|, GT value reported beside"),
    MetricInfo("top1", "vcbench.metrics.classification:Top1", True, weights=("vgg19",), column=6,
               description="VGG19 top-1 accuracy (labels, else the GT frame's top-1 class)"),
    MetricInfo("top5", "vcbench.metrics.classification:Top5", True, weights=("vgg19",), column=7,
               description="VGG19 top-5 accuracy (labels, else the GT frame's top-1 class)"),
    MetricInfo("warp_error", "vcbench.metrics.temporal:WarpError", False, needs=("flow",), per_pair=True, column=8,
               description=f"Lai et al. 2018 warping error on GT flow with occlusion mask; {_FLOW_WEIGHTS_NOTE}"),
    MetricInfo("flicker", "vcbench.metrics.temporal:Flicker", False, needs=("flow",), per_pair=True, gt_twin=True,
               column=9,
               description=f"mean |warped prev - current| (0-255) on non-occluded pixels; GT value beside; "
                           f"{_FLOW_WEIGHTS_NOTE}"),
    MetricInfo("cdc", "vcbench.metrics.cdc:CDC", False, min_frames=5, column=10, reads_gt=False,
               description="TCVC colour distribution consistency (JS divergence of histograms, d=1,2,4)"),
):
    METRICS.add(_info)
del _info

#: Keyword arguments some metrics take and others ignore (the scorer passes them to every metric).
_COMMON_KWARGS = frozenset({"allow_unverified", "shared", "weights_path"})


def metric_names() -> list[str]:
    """Names in the protocol's order (the default metric set of `vcbench score`)."""
    return list(METRICS)


def get_info(name: str) -> MetricInfo:
    """The MetricInfo of `name`; InputError listing the valid names otherwise."""
    return METRICS.spec(name)


def metric_class(name: str) -> type[Metric]:
    """Import (once) and return the class behind `name`."""
    return METRICS.load(name)


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
