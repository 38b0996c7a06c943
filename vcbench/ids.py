"""Ids made from free text (file stems, video names), shared by the stills, the sources and the builds."""

from __future__ import annotations

import re

from vcbench.errors import InputError

_ID_RE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_id(text: str) -> str:
    """A clip/video id usable as a file name and in DEVC's pairs file (its loader cuts names at '.')."""
    out = _ID_RE.sub("-", text).strip("-")
    if not out:
        raise InputError(f"cannot make an id from {text!r}", hint="give the clip a name with letters or digits")
    return out
