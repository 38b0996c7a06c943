"""vcbench.paths gives exactly what the functions it replaces give (issue 12, plan 3.1): the GT
cache's `default_cache_dir`, the folders the benchmark sets use (the sample's cache, the data root
Lai's sets are looked for in) and the results database's `default_db_path`, with each variable set,
empty or unset (conftest points platformdirs at private XDG folders), and with an explicit argument."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcbench import paths
from vcbench.benchmarks import benchmark_status
from vcbench.benchmarks.sample import prepare_sample
from vcbench.metrics import gt_cache
from vcbench.reports import db


def _sample_cache(cache_dir=None) -> Path:
    """The cache folder the sample set is prepared in (one frame of one clip, 8 px wide)."""
    return prepare_sample(cache_dir, frames=1, width=8, clips=("carphone",)).parent.parent


def _check() -> None:
    assert paths.cache_dir() == gt_cache.default_cache_dir() == _sample_cache()
    assert f"not found under {paths.data_dir()}" in benchmark_status("davis30")[1]
    assert paths.db_path() == db.default_db_path()


@pytest.mark.parametrize("state", ["unset", "empty", "set"])
def test_same_folders_as_today(state, tmp_path, monkeypatch, _isolated_home):
    for env in (paths.CACHE_ENV, paths.DATA_ROOT_ENV, paths.DB_ENV):
        if state == "empty":
            monkeypatch.setenv(env, "")
        elif state == "set":
            monkeypatch.setenv(env, str(tmp_path / env.lower()))
    _check()
    if state == "set":
        assert paths.cache_dir() == tmp_path / "vcbench_cache_dir"
        assert paths.data_dir() == tmp_path / "vcbench_data_root"
        assert paths.db_path() == tmp_path / "vcbench_db"
    else:  # platformdirs under conftest's XDG folders
        assert paths.cache_dir() == _isolated_home / "cache" / "vcbench"
        assert paths.data_dir() == _isolated_home / "data" / "vcbench" / "datasets"
        assert paths.db_path() == _isolated_home / "data" / "vcbench" / "results.sqlite"


def test_an_explicit_folder_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "env"))
    assert paths.cache_dir(tmp_path / "arg") == _sample_cache(tmp_path / "arg") == tmp_path / "arg"
    assert paths.cache_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    assert paths.data_dir("d") == Path("d") and paths.db_path("x.sqlite") == Path("x.sqlite")


def test_names_match_todays_constants():
    assert paths.CACHE_ENV == "VCBENCH_CACHE_DIR" and paths.DATA_ROOT_ENV == "VCBENCH_DATA_ROOT"
    assert paths.DB_FILENAME == db.DB_FILENAME


def test_without_platformdirs_the_xdg_rule(_isolated_home):
    """The GPU image has no platformdirs: the same folders from the XDG variables, as the GT cache's
    own fallback gives, and `vcbench.weights` (which imports paths) still imports."""
    import importlib
    import sys

    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(sys.modules, "platformdirs", None)  # import platformdirs -> ImportError
            bare = importlib.reload(paths)
            assert bare.cache_dir() == gt_cache.default_cache_dir() == _isolated_home / "cache" / "vcbench"
            assert bare.data_dir() == _isolated_home / "data" / "vcbench" / "datasets"
            assert bare.db_path() == _isolated_home / "data" / "vcbench" / "results.sqlite"
            mp.delenv("XDG_CACHE_HOME")
            assert bare.cache_dir() == gt_cache.default_cache_dir() == Path.home() / ".cache" / "vcbench"
    finally:
        importlib.reload(paths)
    assert paths.user_cache_dir.__module__.startswith("platformdirs")
