"""Models by name: the built-ins plus third-party models from the `vcbench.models` entry points.

Built-ins are named by import path strings and imported only when used, so `vcbench models list`
stays fast and one model whose module fails to import (a missing optional dependency, a module not
installed yet) is shown as unavailable with its import error instead of breaking every command.

A third-party package plugs in a model by declaring, in its packaging metadata,

    [project.entry-points."vcbench.models"]
    mymodel = "mypackage.module:MyColorizer"     # a vcbench.baselines.base.Colorizer subclass

after which `vcbench evaluate --model mymodel` runs it like a built-in.
"""

from __future__ import annotations

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
}


@dataclass(frozen=True)
class ModelEntry:
    """Where a model comes from: its name, "module:Class" target and origin (built-in or a distribution)."""

    name: str
    target: str
    origin: str = "built-in"


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


def model_class(name: str) -> type[Colorizer]:
    """The Colorizer subclass registered under `name` (imported now)."""
    entry = _entry(name)
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
    try:
        cls = _import_target(entry.target)
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party import is reported, not raised
        return ModelInfo(entry.name, entry.target, entry.origin, False,
                         error=f"{type(exc).__name__}: {exc}".replace("\n", " "))
    return ModelInfo(entry.name, entry.target, entry.origin, True,
                     description=getattr(cls, "description", "") or (cls.__doc__ or "").strip().split("\n")[0],
                     uses_reference=bool(getattr(cls, "uses_reference", True)),
                     weights=list(getattr(cls, "weights", ())))
