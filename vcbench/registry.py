"""The one registry type behind every "name -> thing" table (models, metrics, flow estimators,
descriptors, benchmark sets) and the one loader of "module:Attr" targets.

A registry maps names to frozen spec records (a `Spec` subclass: name, target, and whatever the kind
needs). Built-ins are registered in order; plug-ins come from an entry-point group, after the
built-ins and sorted by name, and never replace a built-in (a stray package must not silently swap a
published baseline). Targets are imported only when an entry is loaded, so listing names stays cheap
and one broken module does not break the others. Torch-free and free of vcbench imports but
`vcbench.errors`: `vcbench metrics list` reads a registry without importing any metric module.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from vcbench.errors import InputError, VcbenchError

log = logging.getLogger(__name__)


def load_target(target: str) -> Any:
    """The object a "package.module:Attr[.Attr]" target names (a bare "package.module": the module).

    Raises ImportError / AttributeError as the import or the lookup fails, ValueError for an empty
    target; a registry turns those into its one-line error.
    """
    module_name, _, attr = target.strip().partition(":")
    if not module_name:
        raise ValueError(f"{target!r} is not a 'module:attribute' target")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Spec:
    """What a registry holds for one name. `target` ("module:Attr") is imported on first load; `obj`,
    when set, is the object itself (registered in code, e.g. by a test). `origin` says where the entry
    came from: "built-in" or the distribution ("pkg 1.2") that declared the entry point."""

    name: str
    target: str = ""
    origin: str = field(default="built-in", kw_only=True)
    obj: Any = field(default=None, kw_only=True, compare=False)


S = TypeVar("S", bound=Spec)


def _unknown_default(kind: str) -> Callable[[str, list[str]], VcbenchError]:
    def unknown(name: str, names: list[str]) -> VcbenchError:
        return InputError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(names)}")

    return unknown


def _load_error_default(kind: str) -> Callable[[Spec, Exception], VcbenchError]:
    def load_error(spec: Spec, exc: Exception) -> VcbenchError:
        where = ", ".join(filter(None, [spec.target, spec.origin]))
        return InputError(f"{kind} {spec.name!r} ({where}) cannot be loaded: "
                          f"{type(exc).__name__}: {exc}".replace("\n", " "))

    return load_error


class Registry(MutableMapping[str, S], Generic[S]):
    """Names -> specs of one kind; `load(name)` imports (once) and checks what a spec names.

    `kind` names the thing in messages ("model", "metric"); `spec` is the spec class, which a plain
    "module:Attr" string assigned to a name is wrapped in (`spec(name, target)`); `base`, when given,
    is the class every loaded object must subclass; `entry_points` the plug-in group; `unknown(name,
    names)` and `load_error(spec, exc)` build each registry's own error for an unknown name and for a
    target that cannot be loaded.
    """

    def __init__(self, kind: str, spec: type[S] = Spec, *, base: type | None = None,  # type: ignore[assignment]
                 entry_points: str | None = None,
                 unknown: Callable[[str, list[str]], VcbenchError] | None = None,
                 load_error: Callable[[S, Exception], VcbenchError] | None = None) -> None:
        if not (isinstance(spec, type) and issubclass(spec, Spec)):
            raise TypeError(f"a registry's spec type must subclass vcbench.registry.Spec, not {spec!r}")
        self.kind = kind
        self.spec_type = spec
        self.base = base
        self.group = entry_points
        self.unknown = unknown or _unknown_default(kind)
        self.load_error = load_error or _load_error_default(kind)
        self._builtin: dict[str, S] = {}
        self._loaded: dict[str, tuple[S, Any]] = {}

    # ---------------------------------------------------------------- the mapping
    def _coerce(self, name: str, value: S | str) -> S:
        if isinstance(value, str):
            try:
                return self.spec_type(name, value)
            except TypeError as exc:
                raise TypeError(f"the {self.kind} registry needs a {self.spec_type.__name__} for {name!r}, "
                                f"not only a target string ({exc})") from exc
        if not isinstance(value, self.spec_type):
            raise TypeError(f"the {self.kind} registry holds {self.spec_type.__name__} records, not {value!r}")
        if value.name != name:
            raise ValueError(f"{self.kind} spec named {value.name!r} registered under {name!r}")
        return value

    def __setitem__(self, name: str, value: S | str) -> None:
        self._builtin[name] = self._coerce(name, value)

    def __delitem__(self, name: str) -> None:
        del self._builtin[name]  # plug-ins come from packaging metadata; uninstall the package instead

    def add(self, spec: S) -> S:
        """Register `spec` under its own name (after the entries already there) and return it."""
        self[spec.name] = spec
        return spec

    def plugins(self) -> dict[str, S]:
        """The entry-point entries whose names no built-in takes, sorted by name (read each call, so a
        package installed meanwhile is seen)."""
        if self.group is None:
            return {}
        out: dict[str, S] = {}
        for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            origin = f"{dist.name} {dist.version}" if dist is not None else "entry point"
            taken = self._builtin.get(ep.name) or out.get(ep.name)
            if taken is not None:
                if taken.target != ep.value:
                    log.warning("ignoring %s %r from %s: the name is already taken by %s",
                                self.kind, ep.name, origin, taken.target or taken.origin)
                continue
            out[ep.name] = self.spec_type(ep.name, ep.value, origin=origin)
        return out

    def __getitem__(self, name: str) -> S:
        if name in self._builtin:
            return self._builtin[name]
        return self.plugins()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._builtin or (isinstance(name, str) and name in self.plugins())

    def __iter__(self) -> Iterator[str]:
        return iter([*self._builtin, *self.plugins()])

    def __len__(self) -> int:
        return len(self._builtin) + len(self.plugins())

    def names(self) -> list[str]:
        """Built-ins in registration order, then plug-ins by name."""
        return list(self)

    # ---------------------------------------------------------------- lookup and loading
    def spec(self, name: str) -> S:
        """The spec of `name`; an unknown name raises this registry's `unknown` error."""
        try:
            return self[name]
        except KeyError:
            raise self.unknown(name, self.names()) from None

    def load(self, name: str) -> Any:
        """What `name`'s spec names (its `obj`, else its target imported), checked against `base`;
        cached until the name is registered again. A failure raises this registry's `load_error`."""
        spec = self.spec(name)
        hit = self._loaded.get(name)
        if hit is not None and hit[0] is spec:
            return hit[1]
        try:
            obj = spec.obj if spec.obj is not None else load_target(spec.target)
            if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
                raise TypeError(f"{spec.target or repr(obj)} is not a {self.base.__module__}.{self.base.__qualname__} "
                                "subclass")
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            raise self.load_error(spec, exc) from exc
        self._loaded[name] = (spec, obj)
        return obj

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """`load(name)(*args, **kwargs)`."""
        return self.load(name)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._builtin)} built-in)"
