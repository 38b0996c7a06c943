"""Where vcbench keeps things on this machine: its cache, the licensed data sets, the results database.

Each honours its environment variable (a non-empty value wins), else the platform's user folders
(platformdirs: on Linux `$XDG_CACHE_HOME/vcbench`, `$XDG_DATA_HOME/vcbench`; the same XDG rule
where platformdirs is not installed). An explicit argument,
as a command's `--cache-dir`/`--data-root`/`--db` gives it, wins over both.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    from platformdirs import user_cache_dir, user_data_dir
except ImportError:  # e.g. the GPU image: the XDG rule platformdirs follows on Linux (as gt_cache does)
    def user_cache_dir(appname: str) -> str:
        return str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / appname)

    def user_data_dir(appname: str) -> str:
        return str(Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / appname)

APP = "vcbench"
CACHE_ENV = "VCBENCH_CACHE_DIR"
DATA_ROOT_ENV = "VCBENCH_DATA_ROOT"
DB_ENV = "VCBENCH_DB"
DB_FILENAME = "results.sqlite"


def _chosen(explicit: str | Path | None, env: str) -> Path | None:
    if explicit is not None:
        return Path(explicit)
    value = os.environ.get(env)
    return Path(value) if value else None


def cache_dir(explicit: str | Path | None = None) -> Path:
    """Derived data (the decoded sample, the GT-side cache, weight hashes): `$VCBENCH_CACHE_DIR`,
    else the user cache folder."""
    return _chosen(explicit, CACHE_ENV) or Path(user_cache_dir(APP))


def data_dir(explicit: str | Path | None = None) -> Path:
    """Where the licensed benchmark sets are looked for and downloaded to: `$VCBENCH_DATA_ROOT`, else
    `<user data folder>/datasets`."""
    return _chosen(explicit, DATA_ROOT_ENV) or Path(user_data_dir(APP)) / "datasets"


def db_path(explicit: str | Path | None = None) -> Path:
    """The results database: `$VCBENCH_DB`, else `<user data folder>/results.sqlite`."""
    return _chosen(explicit, DB_ENV) or Path(user_data_dir(APP)) / DB_FILENAME
