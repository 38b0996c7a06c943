"""Typed KEY=VALUE options (`--model-option`, `--dataset-option`): check each value against the type
its consumer declares, so `frames=abc` is one line naming the option and the type it expects instead
of a `ValueError` from deep inside a loader.

Values arrive JSON-decoded (`cli.evaluate.parse_options`: `8` is an int, `true` a bool, anything
that is not JSON a string). Types are read from annotations (`int`, `float`, `bool`, `str`, `Path`,
`Literal[...]`, unions with `None`); a value whose type cannot be checked here passes unchanged.
"""

from __future__ import annotations

import inspect
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from vcbench.errors import InputError

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class _Mismatch(Exception):
    """The value does not have the annotated type (internal: `coerce` turns it into an InputError)."""


def expected(annotation: Any) -> str:
    """What a value of `annotation` looks like, in words for an error line."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(expected(a) for a in arms) + (" (or null)" if len(arms) < len(typing.get_args(annotation))
                                                        else "")
    if origin in (list, tuple) and typing.get_args(annotation):
        return f"a JSON list of {expected(typing.get_args(annotation)[0]).removeprefix('a ').removeprefix('an ')}s"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            Path: "a path"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _convert(value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value in choices:
            return value
        if isinstance(value, (int, float)) and str(value) in choices:
            return str(value)
        raise _Mismatch
    if origin in (typing.Union, types.UnionType):
        arms = typing.get_args(annotation)
        if value is None and type(None) in arms:
            return None
        for arm in arms:
            if arm is type(None):
                continue
            try:
                return _convert(value, arm)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin in (list, tuple) and typing.get_args(annotation):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        item = typing.get_args(annotation)[0]
        return origin(_convert(v, item) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise _Mismatch
    if annotation is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        raise _Mismatch
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _Mismatch
        return float(value)
    if annotation in (str, Path):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = value if isinstance(value, str) else str(value)  # JSON turned '3' into 3: a name is text
            return Path(text) if annotation is Path else text
        raise _Mismatch
    return value  # a type this module does not check (a tuple, a dataclass): its consumer does


def coerce(flag: str, key: str, value: Any, annotation: Any) -> Any:
    """`value` as `annotation`, or an InputError naming the option and the expected type."""
    try:
        return _convert(value, annotation)
    except _Mismatch:
        shown = value if isinstance(value, str) else json.dumps(value, default=str)  # as the user typed it
        raise InputError(f"{flag} {key}={shown}: {key} expects {expected(annotation)}",
                         hint=f"pass {flag} {key}=VALUE with a value of that type") from None


def coerce_all(flag: str, options: Mapping[str, Any], types_: Mapping[str, Any]) -> dict[str, Any]:
    """Every option whose type is known, coerced (see `coerce`); the others unchanged."""
    return {k: coerce(flag, k, v, types_[k]) if k in types_ else v for k, v in options.items()}


def parameter_types(fn: Callable[..., Any], skip: tuple[str, ...] = ("self", "device")) -> dict[str, Any]:
    """{name: annotation} of `fn`'s named parameters (resolved with `typing.get_type_hints`; empty when
    its annotations cannot be resolved, which leaves checking to `fn` itself)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - an unresolvable annotation only means "unchecked here"
        return {}
    params = inspect.signature(fn).parameters.values()
    return {p.name: hints[p.name] for p in params if p.name in hints and p.name not in skip
            and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)}


def option(options: Mapping[str, Any], key: str, annotation: Any, default: Any, *, flag: str) -> Any:
    """`options[key]` checked as `annotation` (see `coerce`), or `default` when absent."""
    return coerce(flag, key, options[key], annotation) if key in options else default
