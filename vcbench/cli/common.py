"""What several commands share: `score` and `evaluate` the --metrics list and the --json output,
`leaderboard` and `report` the rows' citations.

`score` and `evaluate` take the same two options with the same rules (an empty --metrics is a
mistake, not "all"; --json '-' is stdout, any other value a file checked before the long run and
written atomically after it), so their messages are one text.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vcbench.atomic import atomic_write_text, check_writable
from vcbench.citations import citation
from vcbench.errors import InputError


def metric_list(arg: str | None) -> list[str] | None:
    """--metrics as names (None: all); an empty list is an error rather than silently every metric."""
    if arg is None:
        return None
    metrics = [m.strip() for m in arg.split(",") if m.strip()]
    if not metrics:
        raise InputError("--metrics is empty", hint="pass names such as psnr,ssim or leave it out for all")
    return metrics


def check_json_dest(dest: str | None) -> None:
    """Fail now, not after the whole run, when --json names a folder or a file that cannot be written."""
    if dest and dest != "-":
        if Path(dest).is_dir():
            raise InputError("--json points at a folder", path=dest, hint="give a file name such as results.json")
        check_writable(dest)


def cite_model(name: str) -> str:
    """A table row's citation (`vcbench.citations`' table), else a plug-in's class attribute `citation`:
    the reports cannot load model classes, so the CLI hands them this."""
    return citation(name, plugin=_plugin_citation)


def _plugin_citation(name: str) -> str:
    # lazy: CLI start-up (torch), and only for a name the built-in table lacks
    from vcbench.baselines.registry import model_citation

    return model_citation(name)


def write_json_text(dest: str, text: str) -> None:
    """The JSON text to stdout for '-', else atomically to the file `dest`."""
    if dest == "-":
        sys.stdout.write(text)
    else:
        atomic_write_text(dest, text)
