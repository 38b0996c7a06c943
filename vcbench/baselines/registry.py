"""Models by name: the built-ins plus third-party models from the `vcbench.models` entry points.

Built-ins are named by import path strings and imported only when used, so `vcbench models list`
stays fast and one model whose module fails to import (a missing optional dependency, a module not
installed yet) is shown as unavailable with its import error instead of breaking every command.

A third-party package plugs in a model by declaring, in its packaging metadata,

    [project.entry-points."vcbench.models"]
    mymodel = "mypackage.module:MyColorizer"     # a vcbench.baselines.base.Colorizer subclass

after which `vcbench evaluate --model mymodel` runs it like a built-in.

Wrappers (`vcbench.baselines.wrappers`) are post-processes named after a '+': `welsh+dvp` is the
`dvp` wrapper around `welsh`, built by `model_class` on demand. Systems the field compares against
that cannot be run here are listed with the reason (`UNAVAILABLE_MODELS`), never replaced by a
stand-in.
"""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import torch

from vcbench.baselines.base import Colorizer
from vcbench.errors import InputError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vcbench.models"

BUILTIN_MODELS: dict[str, str] = {
    "gray": "vcbench.baselines.gray:Gray",
    "reinhard": "vcbench.baselines.reinhard:Reinhard",
    "welsh": "vcbench.baselines.welsh:Welsh",
    "propagate": "vcbench.baselines.propagate:Propagate",
    "devc": "vcbench.baselines.devc:DEVC",
    "zhang16": "vcbench.baselines.zhang:Zhang16",
    "zhang17": "vcbench.baselines.zhang:Zhang17",
    "instcolor": "vcbench.baselines.instcolor:InstColor",
}

#: What a leaderboard row cites, for the built-ins (a class attribute `citation` serves plug-ins).
CITATIONS: dict[str, str] = {
    "gray": "floor baseline: GT L with zero chroma (vcbench)",
    "reinhard": "Reinhard, Ashikhmin, Gooch & Shirley, Color Transfer between Images, IEEE CG&A 2001",
    "welsh": "Welsh, Ashikhmin & Mueller, Transferring Color to Greyscale Images, SIGGRAPH 2002",
    "propagate": "optical-flow colour propagation from the first frame, Welsh et al. 2002 refill (vcbench baseline)",
    "devc": "Zhang, He, Liao, Sander et al., Deep Exemplar-based Video Colorization, CVPR 2019",
    "zhang16": "Zhang, Isola & Efros, Colorful Image Colorization, ECCV 2016",
    "zhang17": "Zhang, Zhu, Isola, Geng, Lin, Yu & Efros, Real-Time User-Guided Image Colorization with Learned "
               "Deep Priors, SIGGRAPH 2017",
    "instcolor": "Su, Chu & Huang, Instance-aware Image Colorization, CVPR 2020",
    "dvp": "Lei, Xing & Chen, Blind Video Temporal Consistency via Deep Video Prior, NeurIPS 2020",
    "lai18": "Lai, Huang, Wang, Shechtman, Yumer & Yang, Learning Blind Video Temporal Consistency, ECCV 2018",
}

#: Post-processing wrappers, used as `BASE+NAME`.
BUILTIN_WRAPPERS: dict[str, str] = {
    "dvp": "vcbench.baselines.dvp:DVP",
    "lai18": "vcbench.baselines.lai18:Lai18",
}

#: Published systems that cannot be run and verified here: name -> (citation, exactly what is missing).
UNAVAILABLE_MODELS: dict[str, tuple[str, str]] = {
    "tcvc": ("Liu et al. 2021, Temporally Consistent Video Colorization (lyh-18/TCVC)",
             "not ported yet: TCVC_IDC (SIGGRAPH17 anchor frames every 18th frame, bidirectional feature "
             "propagation warped by FlowNet2, weighting and refinement nets) is plain PyTorch apart from "
             "flownet2-pytorch's CUDA ops, and ptlflow's FlowNet2 (vcbench.flow) keeps NVIDIA's module names, "
             "but the port, the mapping of the checkpoint's flow.* keys and the Resample2d equivalence are not "
             "written; its weights (experiments/TCVC_IDC/models/80000_G.pth, FlowNet2_checkpoint.pth.tar) are "
             "only on Google Drive/Baidu with no published hash"),
    "he18": ("He et al. 2018, Deep Exemplar-based Colorization (msracver/Deep-Exemplar-based-Colorization)",
             "its similarity sub-net and the Deep Image Analogy correspondence it needs exist only as "
             "Windows/Caffe CUDA code (similarity_combo.exe, vgg19_bn_gray_ft_iter_150000.caffemodel); only "
             "the colorization sub-net (example_net.pth) is PyTorch, and it cannot run without those maps"),
    "meyer18": ("Meyer et al. 2018, Deep Video Color Propagation (BMVC)",
                "no public code or weights were released (Disney Research / ETH; only the paper and a "
                "patent application are public)"),
}


@dataclass(frozen=True)
class ModelEntry:
    """Where a model comes from: its name, "module:Class" target and origin (built-in or a distribution)."""

    name: str
    target: str
    origin: str = "built-in"
    #: Set for a listed system that cannot run here: why (see UNAVAILABLE_MODELS).
    unavailable: str | None = None


@dataclass
class ModelInfo:
    """What `vcbench models list` shows for one model; `error` is set when it cannot be imported."""

    name: str
    target: str
    origin: str
    available: bool
    description: str = ""
    uses_reference: bool | None = None
    weights: list[str] = field(default_factory=list)
    error: str | None = None


def model_entries() -> dict[str, ModelEntry]:
    """Every model name, built-ins first; a plug-in cannot take a built-in's name (it is skipped
    with a warning, so a stray package cannot silently replace a published baseline)."""
    entries = {name: ModelEntry(name, target) for name, target in BUILTIN_MODELS.items()}
    for name, (cite, why) in UNAVAILABLE_MODELS.items():
        entries[name] = ModelEntry(name, "", unavailable=f"{cite}: {why}")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else "entry point"
        if ep.name in entries:
            if entries[ep.name].target != ep.value:
                log.warning("ignoring model %r from %s: the name is already taken by %s",
                            ep.name, origin, entries[ep.name].target)
            continue
        entries[ep.name] = ModelEntry(ep.name, ep.value, origin)
    return entries


def model_names() -> list[str]:
    """All registered model names (built-ins, then plug-ins in alphabetical order)."""
    return list(model_entries())


def model_citation(name: str) -> str:
    """The citation of a model name (`BASE+WRAPPER` cites both, base first); a plug-in's class attribute
    `citation`; "" when nothing is known. Never raises: reports call it for names of old runs too."""
    parts = []
    for part in name.split("+"):
        cite = CITATIONS.get(part)
        if cite is None and part in UNAVAILABLE_MODELS:
            cite = UNAVAILABLE_MODELS[part][0]
        if cite is None:
            try:
                cite = str(getattr(model_class(part), "citation", "") or "")
            except Exception:  # noqa: BLE001 - an unknown or broken model simply has no citation
                cite = ""
        if cite:
            parts.append(cite)
    return "; ".join(parts)


def wrapper_names() -> list[str]:
    """Names usable after '+' (`welsh+dvp`)."""
    return list(BUILTIN_WRAPPERS)


def wrapper_class(name: str) -> type:
    """The Wrapper subclass registered under `name` (imported now)."""
    from vcbench.baselines.wrappers import Wrapper

    if name not in BUILTIN_WRAPPERS:
        raise InputError(f"unknown wrapper {name!r}; valid wrappers: {', '.join(BUILTIN_WRAPPERS)}",
                         hint="name a wrapped model as BASE+WRAPPER, e.g. welsh+dvp (see `vcbench models list`)")
    target = BUILTIN_WRAPPERS[name]
    try:
        module_name, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"wrapper {name!r} ({target}) cannot be loaded: {type(exc).__name__}: {exc}".replace("\n", " "))
    if not (isinstance(cls, type) and issubclass(cls, Wrapper)):
        raise InputError(f"{target} is not a vcbench.baselines.wrappers.Wrapper subclass")
    return cls


def _import_target(target: str) -> type[Colorizer]:
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Colorizer)):
        raise TypeError(f"{target} is not a vcbench.baselines.base.Colorizer subclass")
    return obj


def _entry(name: str) -> ModelEntry:
    entries = model_entries()
    if name not in entries:
        raise InputError(f"unknown model {name!r}; valid models: {', '.join(entries)}",
                         hint="see `vcbench models list`")
    return entries[name]


@functools.lru_cache(maxsize=None)
def _wrapped(name: str) -> type[Colorizer]:
    from vcbench.baselines.wrappers import make_wrapped_class

    base, *wrappers = name.split("+")
    cls = model_class(base)
    for w in wrappers:
        cls = make_wrapped_class(cls, wrapper_class(w))
    return cls


def model_class(name: str) -> type[Colorizer]:
    """The Colorizer subclass registered under `name` (imported now); `BASE+WRAPPER[+...]` builds
    the wrapped model's class."""
    if "+" in name:
        return _wrapped(name)
    entry = _entry(name)
    if entry.unavailable:
        raise InputError(f"model {name!r} is not available: {entry.unavailable}",
                         hint="see `vcbench models list`")
    try:
        return _import_target(entry.target)
    except (ImportError, AttributeError, TypeError) as exc:
        raise InputError(f"model {name!r} ({entry.target}, {entry.origin}) cannot be loaded: "
                         f"{type(exc).__name__}: {exc}".replace("\n", " "),
                         hint="install what it needs (see `vcbench models list`) or choose another model") from exc


def get_model(name: str, device: str | torch.device = "cpu", **options) -> Colorizer:
    """An instance of the model `name` on `device`; `options` go to its constructor (and its config)."""
    return model_class(name)(device=device, **options)


def model_info(name: str) -> ModelInfo:
    """Import `name` if possible and describe it; never raises for an import failure."""
    entry = _entry(name)
    if entry.unavailable:
        return ModelInfo(entry.name, entry.target, entry.origin, False, error=entry.unavailable)
    try:
        cls = _import_target(entry.target)
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party import is reported, not raised
        return ModelInfo(entry.name, entry.target, entry.origin, False,
                         error=f"{type(exc).__name__}: {exc}".replace("\n", " "))
    return ModelInfo(entry.name, entry.target, entry.origin, True,
                     description=getattr(cls, "description", "") or (cls.__doc__ or "").strip().split("\n")[0],
                     uses_reference=bool(getattr(cls, "uses_reference", True)),
                     weights=list(getattr(cls, "weights", ())))
