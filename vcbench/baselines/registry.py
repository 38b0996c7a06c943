"""Models by name: the built-ins plus third-party models from the `vcbench.models` entry points.

Both tables (`MODELS`, `WRAPPERS`) are `vcbench.registry.Registry` instances. Built-ins are named by
import path strings and imported only when used, so `vcbench models list` stays fast and one model
whose module fails to import (a missing optional dependency, a module not installed yet) is shown as
unavailable with its import error instead of breaking every command.

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
from dataclasses import dataclass, field

import torch

from vcbench.baselines.base import Colorizer
from vcbench.baselines.wrappers import Wrapper, make_wrapped_class
from vcbench.citations import CITATIONS, citation
from vcbench.errors import InputError, VcbenchError
from vcbench.registry import Registry, Spec
from vcbench.weights import WeightFile

ENTRY_POINT_GROUP = "vcbench.models"


@dataclass(frozen=True)
class ModelEntry(Spec):
    """Where a model comes from: its name, "module:Class" target and origin (built-in or a distribution);
    for a listed system that cannot run here, `unavailable` says why (see UNAVAILABLE_MODELS)."""

    unavailable: str | None = field(default=None, kw_only=True)


def _unknown_model(name: str, names: list[str]) -> VcbenchError:
    return InputError(f"unknown model {name!r}; valid models: {', '.join(names)}", hint="see `vcbench models list`")


def _model_load_error(entry: ModelEntry, exc: Exception) -> VcbenchError:
    return InputError(f"model {entry.name!r} ({entry.target}, {entry.origin}) cannot be loaded: "
                      f"{type(exc).__name__}: {exc}".replace("\n", " "),
                      hint="install what it needs (see `vcbench models list`) or choose another model")


def _unknown_wrapper(name: str, names: list[str]) -> VcbenchError:
    return InputError(f"unknown wrapper {name!r}; valid wrappers: {', '.join(names)}",
                      hint="name a wrapped model as BASE+WRAPPER, e.g. welsh+dvp (see `vcbench models list`)")


#: Every model name: the built-ins in order, the unrunnable systems, then `vcbench.models` plug-ins by
#: name (a plug-in cannot take a built-in's name: it is skipped with a warning, so a stray package
#: cannot silently replace a published baseline).
MODELS: Registry[ModelEntry] = Registry("model", ModelEntry, base=Colorizer, entry_points=ENTRY_POINT_GROUP,
                                        unknown=_unknown_model, load_error=_model_load_error)
MODELS.update({
    "gray": "vcbench.baselines.gray:Gray",
    "reinhard": "vcbench.baselines.reinhard:Reinhard",
    "welsh": "vcbench.baselines.welsh:Welsh",
    "propagate": "vcbench.baselines.propagate:Propagate",
    "devc": "vcbench.baselines.devc:DEVC",
    "zhang16": "vcbench.baselines.zhang:Zhang16",
    "zhang17": "vcbench.baselines.zhang:Zhang17",
    "instcolor": "vcbench.baselines.instcolor:InstColor",
    "tcvc": "vcbench.baselines.tcvc:TCVC",
})

#: Post-processing wrappers, used as `BASE+NAME`.
WRAPPERS: Registry[Spec] = Registry("wrapper", base=Wrapper, unknown=_unknown_wrapper)
WRAPPERS.update({
    "dvp": "vcbench.baselines.dvp:DVP",
    "lai18": "vcbench.baselines.lai18:Lai18",
})

#: Published systems that cannot be run and verified here: name -> exactly what is missing (their
#: citations are in `vcbench.citations.CITATIONS`).
UNAVAILABLE_MODELS: dict[str, str] = {
    "he18": "its similarity sub-net and the Deep Image Analogy correspondence it needs exist only as "
            "Windows/Caffe CUDA code (similarity_combo.exe, vgg19_bn_gray_ft_iter_150000.caffemodel); only "
            "the colorization sub-net (example_net.pth) is PyTorch, and it cannot run without those maps",
    "meyer18": "no public code or weights were released (Disney Research / ETH; only the paper and a "
               "patent application are public)",
}
#: The unrunnable systems are entries too: `models list` shows why, `model_class` refuses them.
MODELS.update({name: ModelEntry(name, unavailable=f"{CITATIONS[name]}: {why}")
               for name, why in UNAVAILABLE_MODELS.items()})


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


def _plugin_citation(name: str) -> str:
    """A plug-in's class attribute `citation`; "" for an unknown or broken model (never raises)."""
    try:
        return str(model_class(name).citation or "")
    except Exception:  # noqa: BLE001 - an unknown or broken model simply has no citation
        return ""


def model_citation(name: str) -> str:
    """The citation of a model name (`BASE+WRAPPER` cites both, base first): the built-in table
    (`vcbench.citations`), else a plug-in's class attribute `citation`; "" when nothing is known."""
    return citation(name, plugin=_plugin_citation)


@functools.lru_cache(maxsize=None)
def _wrapped(name: str) -> type[Colorizer]:
    base, *wrappers = name.split("+")
    cls = model_class(base)
    for w in wrappers:
        cls = make_wrapped_class(cls, WRAPPERS.load(w))
    return cls


def model_class(name: str) -> type[Colorizer]:
    """The Colorizer subclass registered under `name` (imported now); `BASE+WRAPPER[+...]` builds
    the wrapped model's class."""
    if "+" in name:
        return _wrapped(name)
    entry = MODELS.spec(name)
    if entry.unavailable:
        raise InputError(f"model {name!r} is not available: {entry.unavailable}",
                         hint="see `vcbench models list`")
    cls = MODELS.load(name)
    return cls if entry.origin == "built-in" else _plugin_class(cls)


@functools.cache
def _plugin_class(cls: type[Colorizer]) -> type[Colorizer]:
    """A `vcbench.models` plug-in's class as the harness reads it. A plug-in written against the older
    interface returns {file: sha256} strings from `weights_used()`; they become `WeightFile`s here,
    once, so every reader gets one type (a string names no verification: the registry's hash check in
    `weights.unverified` still applies to it)."""

    def weights_used(self: Colorizer) -> dict[str, WeightFile]:
        used = cls.weights_used(self)
        return {f: w if isinstance(w, WeightFile) else WeightFile(str(w)) for f, w in used.items()}

    return type(cls.__name__, (cls,), {"weights_used": weights_used, "__module__": cls.__module__,
                                        "__qualname__": cls.__qualname__, "__doc__": cls.__doc__})


def get_model(name: str, device: str | torch.device = "cpu", **options) -> Colorizer:
    """An instance of the model `name` on `device`; `options` go to its constructor (and its config)."""
    return model_class(name)(device=device, **options)


def model_info(name: str) -> ModelInfo:
    """Import `name` if possible and describe it; never raises for an import failure."""
    entry = MODELS.spec(name)
    if entry.unavailable:
        return ModelInfo(entry.name, entry.target, entry.origin, False, error=entry.unavailable)
    try:
        cls = MODELS.load(name)
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party import is reported, not raised
        # The import failure itself (the registry's error wraps it; the row already names the target).
        cause = exc.__cause__ if isinstance(exc, VcbenchError) and exc.__cause__ is not None else exc
        return ModelInfo(entry.name, entry.target, entry.origin, False,
                         error=f"{type(cause).__name__}: {cause}".replace("\n", " "))
    return ModelInfo(entry.name, entry.target, entry.origin, True,
                     description=cls.description or (cls.__doc__ or "").strip().split("\n")[0],
                     uses_reference=bool(cls.uses_reference), weights=list(cls.weights))
