"""Strict loading of a published checkpoint into a ported network, for every model that loads one.

Nothing here is model-specific (each caller names its model and how to get the right file), so the
models share it without importing one another's packages.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from vcbench.errors import WeightsError


def strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the `module.` prefix that nn.DataParallel adds to every key (only if all keys have it)."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def check_state(module: nn.Module, state: dict[str, torch.Tensor], what: str, source: Path | None, *,
                model: str, hint: str) -> None:
    """One clear WeightsError when `state` (no `module.` prefix) does not fit `module`: the missing and
    unexpected keys and the wrong shapes. Reads only shapes, so `module` may live on the meta device."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"wrong shapes ({'; '.join(wrong[:3])})")
        raise WeightsError(f"{what} does not match {model}'s architecture: " + ", ".join(parts),
                           path=source, hint=hint)


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], what: str, source: Path | None, *,
                model: str, hint: str) -> None:
    """`load_state_dict(strict=True)` (a `module.` prefix dropped), a mismatch one clear WeightsError."""
    state = strip_module_prefix(state)
    check_state(module, state, what, source, model=model, hint=hint)
    module.load_state_dict(state, strict=True)


def load_with_bn_counters(module: nn.Module, state: dict[str, torch.Tensor], what: str, source: Path | None, *,
                          model: str, hint: str) -> None:
    """`load_strict` for checkpoints saved before PyTorch 0.4.1, which lack BatchNorm's
    `num_batches_tracked` counters: the module's own counters fill in (they do not affect inference)."""
    state = dict(strip_module_prefix(state))
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, value)
    load_strict(module, state, what, source, model=model, hint=hint)
