"""Post-processing wrappers: a `Colorizer` that takes another `Colorizer` and is one.

Per-frame image colorizers flicker; the field makes them temporally consistent with a blind
post-process applied to their output (Lai et al. 2018, Deep Video Prior). A wrapper runs its base
model on the clip, then transforms the base's frames; on the command line it is named
`BASE+WRAPPER` (`welsh+dvp`, `zhang16+lai18`, chains such as `zhang16+lai18+dvp` too).

Options: `--model-option KEY=VALUE` goes to the wrapper when the wrapper takes KEY, else to the
base; `WRAPPER.KEY=...` or `BASE.KEY=...` (e.g. `dvp.epochs=5`, `welsh.samples=100`) says which
explicitly. The run's identity records both: `config()` holds the wrapper's options and, under
"base", the base's name and config (so `welsh+dvp` with another Welsh sampling is another run).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch

from vcbench.baselines.base import Colorizer
from vcbench.errors import InputError
from vcbench.weights import WeightFile


class Wrapper(Colorizer):
    """Base class of post-processing wrappers. Subclasses implement `start_clip_own` and `colorize`
    (calling `self.base_frames(L)` for the base model's output of those frames)."""

    #: Short name used after '+' (`dvp`, `lai18`).
    wrapper_name: ClassVar[str]
    #: Weight files of the wrapper itself (the base's are added by `weights_used`).
    weights: ClassVar[tuple[str, ...]] = ()

    def __init__(self, base: Colorizer, device: str | torch.device | None = None, **options: Any) -> None:
        if not isinstance(base, Colorizer):
            raise TypeError(f"{type(self).__name__} wraps a vcbench Colorizer, got {type(base).__name__}")
        super().__init__(base.device if device is None else device, **options)
        self.base = base
        self.name = f"{base.name}+{self.wrapper_name}"
        self.uses_reference = base.uses_reference
        self.supports_propagation = base.supports_propagation
        self._own_weights: dict[str, WeightFile] = {}

    # -- what the harness reads -------------------------------------------------------------
    def weights_used(self) -> dict[str, WeightFile]:
        """The base's files and the wrapper's own (`verified` and `unverified_weights` follow)."""
        return {**self.base.weights_used(), **self._own_weights}

    def config(self) -> dict:
        return {**self.own_config(), "base": {"name": self.base.name, "config": self.base.config()}}

    def own_config(self) -> dict:
        """The wrapper's options that change the output (identity of the run with the base's)."""
        return dict(self.options)

    # -- clip protocol ----------------------------------------------------------------------
    def start_clip(self, references: Sequence[np.ndarray]) -> None:
        self.base.start_clip(references)
        self.start_clip_own(references)

    def start_clip_own(self, references: Sequence[np.ndarray]) -> None:
        """Reset the wrapper's per-clip state."""

    def base_frames(self, luminance: torch.Tensor) -> torch.Tensor:
        """The base model's (N, 3, H, W) uint8 output for these frames, fed in its preferred batch size
        (a recurrent base sees the same consecutive batches as when it runs alone)."""
        step = max(1, int(getattr(self.base, "batch_size", 8)))
        outs = []
        for i in range(0, luminance.shape[0], step):
            out = self.base.colorize(luminance[i:i + step])
            n, size = min(step, luminance.shape[0] - i), tuple(luminance.shape[2:])
            if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8 or tuple(out.shape) != (n, 3, *size):
                raise InputError(f"base model {self.base.name!r} returned {getattr(out, 'shape', type(out))}; "
                                 f"{self.wrapper_name} needs (N, 3, H, W) uint8 frames at the input size")
            outs.append(out.to(self.device))
        return torch.cat(outs) if outs else torch.empty(0, 3, *luminance.shape[2:], dtype=torch.uint8)


# ------------------------------------------------------------------------------ registry glue
def _named_params(cls: type) -> tuple[set[str], bool]:
    """(named constructor options, whether it also takes **kwargs) of a model class."""
    params = inspect.signature(cls.__init__).parameters
    names = {p.name for p in params.values() if p.name not in ("self", "device", "base")
             and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}
    return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def split_options(full_name: str, base_cls: type[Colorizer], wrapper_cls: type[Wrapper],
                  options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(base options, wrapper options) for `BASE+WRAPPER`. Prefixed keys (`dvp.epochs`) go where
    they say (prefixes of inner models pass down unchanged); a plain key goes to the wrapper when
    only the wrapper takes it, to the base otherwise; a key both take must carry a prefix, except
    `allow_unverified_weights`, which both get. `weights` is the base's when the base loads weights."""
    own_names, _ = _named_params(wrapper_cls)
    base_names, base_any = _named_params(base_cls)
    base_is_wrapper = issubclass(base_cls, Wrapper)
    base_opts: dict[str, Any] = {}
    own_opts: dict[str, Any] = {}
    for key, value in options.items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix == wrapper_cls.wrapper_name:
            own_opts[rest] = value
        elif dot:
            base_opts[key] = value  # for the base (or a model further in), which checks it
        elif key == "allow_unverified_weights":
            if "allow_unverified_weights" in own_names:
                own_opts[key] = value
            if "allow_unverified_weights" in base_names or (base_any and base_cls.weights):
                base_opts[key] = value
        elif key == "weights" and base_cls.weights:
            base_opts[key] = value
        elif key in own_names and (key in base_names or (base_any and base_is_wrapper)):
            raise InputError(f"model {full_name!r}: option {key!r} is taken by both {wrapper_cls.wrapper_name} and "
                             f"{base_cls.name}", hint=f"write {wrapper_cls.wrapper_name}.{key}=... or "
                                                      f"{base_cls.name.split('+')[0]}.{key}=...")
        elif key in own_names:
            own_opts[key] = value
        elif key in base_names or base_any:
            base_opts[key] = value
        else:
            raise InputError(f"model {full_name!r} does not take the option {key!r}",
                             hint=f"{wrapper_cls.wrapper_name} takes {', '.join(sorted(own_names)) or 'nothing'}; "
                                  f"{base_cls.name} takes {', '.join(sorted(base_names)) or 'nothing'}")
    return base_opts, own_opts


def _strip_own_prefix(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Options for a plain (unwrapped) model: `NAME.key` becomes `key`; another prefix is an error."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix != name:
            raise InputError(f"option {key!r}: no model {prefix!r} in this chain", hint=f"the base model is {name!r}")
        out[rest if dot else key] = value
    return out


def make_wrapped_class(base_cls: type[Colorizer], wrapper_cls: type[Wrapper]) -> type[Colorizer]:
    """The class `vcbench evaluate --model BASE+WRAPPER` instantiates: built like any model from
    `device` and options, it builds the base and wraps it. Class attributes the harness reads
    (weights, uses_reference, supports_propagation, evaluate_defaults) combine both."""
    full = f"{base_cls.name}+{wrapper_cls.wrapper_name}"

    def __init__(self, device: str | torch.device = "cpu", **options: Any) -> None:
        base_opts, own_opts = split_options(full, base_cls, wrapper_cls, options)
        if not issubclass(base_cls, Wrapper):
            base_opts = _strip_own_prefix(base_cls.name, base_opts)
        try:
            inspect.signature(base_cls).bind(device=device, **base_opts)
        except TypeError as exc:
            raise InputError(f"model {base_cls.name!r} (inside {full!r}) does not take the option(s) "
                             f"{', '.join(sorted(base_opts))} ({exc})") from exc
        base = base_cls(device=device, **base_opts)
        wrapper_cls.__init__(self, base, device=device, **own_opts)

    attrs = {
        "__init__": __init__,
        "__doc__": f"{wrapper_cls.wrapper_name} applied to {base_cls.name}'s frames.",
        "__module__": wrapper_cls.__module__,
        "name": full,
        "description": f"{wrapper_cls.description} on {base_cls.name}",
        "weights": tuple(dict.fromkeys(tuple(base_cls.weights) + tuple(wrapper_cls.weights))),
        "uses_reference": base_cls.uses_reference,
        "supports_propagation": base_cls.supports_propagation,
        "evaluate_defaults": {**dict(base_cls.evaluate_defaults), **dict(wrapper_cls.evaluate_defaults)},
    }
    return type(f"{wrapper_cls.__name__}On{base_cls.__name__}", (wrapper_cls,), attrs)
