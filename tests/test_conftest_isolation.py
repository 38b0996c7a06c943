"""The shared fixtures isolate every test from the developer's real folders and from the network."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import requires_gpu


def _inside(path: Path, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root.resolve())


def test_every_test_gets_a_private_empty_torch_home_and_is_offline(_isolated_home, torch_home):
    from vcbench.download import offline
    from vcbench.weights import checkpoints_dir, torch_home as resolver_home

    assert torch_home == _isolated_home / "torch_home" == resolver_home()
    assert checkpoints_dir() == torch_home / "hub" / "checkpoints"
    assert list(checkpoints_dir().iterdir()) == []
    assert offline() and os.environ["VCBENCH_OFFLINE"] == "1"
    assert not _inside(torch_home, Path.home() / ".cache" / "torch")


def test_vcbench_default_folders_are_temporary(_isolated_home):
    from vcbench.paths import cache_dir, data_dir
    from vcbench.reports.db import default_db_path

    for path in (default_db_path(), cache_dir(), data_dir()):
        assert _inside(path, _isolated_home), path


def test_requires_gpu_marks_and_skips():
    @requires_gpu
    def fake_test():
        pass

    names = {m.name for m in fake_test.pytestmark}
    assert names == {"gpu", "skipif"}
    skip = next(m for m in fake_test.pytestmark if m.name == "skipif")
    import torch

    assert skip.args[0] is (not torch.cuda.is_available())
