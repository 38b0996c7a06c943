"""LPIPS (Zhang et al. 2018), AlexNet trunk with the v0.1 linear calibration, batched on the device.

The network is the one the `lpips` package builds (torchvision AlexNet features cut after each ReLU,
its input scaling layer, unit-normalised features, 1x1 linear layers, spatial mean, sum over the
five layers), assembled here so that the AlexNet weights come through vcbench's resolver (checked,
recorded, never a silent download) and the linear layers from the file the `lpips` wheel ships.
Agrees with `lpips.LPIPS(net="alex", version="0.1")` to 1e-5 given the same trunk weights.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from vcbench.errors import WeightsError
from vcbench.metrics.base import FrameMetric
from vcbench.metrics.network import inference_form, input_format
from vcbench.metrics.sizing import work_bytes
from vcbench.weights import WeightFile, build_loaded, load_state_dict, resolve, sha256_file

#: AlexNet `features` indices whose outputs (after ReLU) LPIPS compares: relu1..relu5.
_TAPS = (1, 4, 7, 9, 11)
_CHANNELS = (64, 192, 384, 256, 256)
# lpips' ScalingLayer constants (v0.1): inputs in [-1, 1] are standardised with these.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


def lpips_linear_weights_path(version: str = "0.1", net: str = "alex") -> Path:
    """The linear-layer file shipped inside the installed `lpips` wheel (located without importing it)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the LPIPS linear layers come with the `lpips` package, which is not installed",
                           hint="pip install lpips==0.1.4")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / f"v{version}" / f"{net}.pth"
    if not path.is_file():
        raise WeightsError("the lpips package has no linear-layer file", path=path,
                           hint="reinstall it: pip install --force-reinstall lpips==0.1.4")
    return path


def _alexnet_trunk() -> torch.nn.Module:
    """torchvision's AlexNet `features` up to relu5, layer for layer (the same indices, so the same
    state-dict keys `features.0.weight` ...), built here because importing torchvision costs 1-1.7 s
    of start-up (it imports every model family) and LPIPS needs only these twelve layers."""
    nn = torch.nn
    trunk = nn.Module()
    trunk.features = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True))
    return trunk


def _trunk_state(alexnet_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trunk's part of an AlexNet state dict; the classifier's keys (unused by LPIPS) are set aside,
    any other key is left in so that strict loading refuses a file that is not AlexNet's."""
    return {k: v for k, v in alexnet_state.items() if not k.startswith("classifier.")}


class LPIPSNet(torch.nn.Module):
    """AlexNet trunk + v0.1 linear layers; `forward(a, b)` gives the per-image distance (N,)."""

    def __init__(self, alexnet_state: dict[str, torch.Tensor], linear_state: dict[str, torch.Tensor]):
        super().__init__()
        self.features = build_loaded(_alexnet_trunk, _trunk_state(alexnet_state)).features
        self.lins = torch.nn.ParameterList(
            [torch.nn.Parameter(linear_state[f"lin{i}.model.1.weight"].float(), requires_grad=False)
             for i in range(len(_TAPS))])
        for i, (lin, ch) in enumerate(zip(self.lins, _CHANNELS)):
            if tuple(lin.shape) != (1, ch, 1, 1):
                raise WeightsError(f"LPIPS linear layer lin{i} has shape {tuple(lin.shape)}, expected (1, {ch}, 1, 1)",
                                   hint="use the alex.pth of lpips v0.1")
        shift, scale = torch.tensor(_SHIFT).view(1, 3, 1, 1), torch.tensor(_SCALE).view(1, 3, 1, 1)
        self.register_buffer("gain", 1.0 / (127.5 * scale))  # uint8 -> standardised: u * gain + offset
        self.register_buffer("offset", (-1.0 - shift) / scale)
        self.requires_grad_(False)
        self.eval()

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """pred, gt: uint8 (N,3,H,W) on the network's device; the distance of each pair, (N,).

        Both sides go through the trunk as one batch, and each tap's term is taken as soon as its
        layer has run, so one layer's activations are alive at a time, never all five taps.
        """
        n = pred.shape[0]
        x = self.scaled_input(pred, gt)
        total = torch.zeros(n, dtype=x.dtype, device=x.device)
        lins = iter(self.lins)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                total += _tap_distance(x, n, next(lins))
        return total

    def scaled_input(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """cat(pred, gt) as float32 in lpips' standardised units ((x / 127.5 - 1 - shift) / scale), in
        the device's layout, in two passes: uint8 -> float32 into place, then one multiply-add
        (the composed affine map rounds differently from lpips' four steps: ~1e-7 of the input)."""
        n = pred.shape[0]
        x = torch.empty((2 * n, *pred.shape[1:]), dtype=torch.float32, device=pred.device,
                        memory_format=input_format(pred.device))
        x[:n].copy_(pred)
        x[n:].copy_(gt)
        return torch.addcmul(self.offset, x, self.gain, out=x)


def _tap_distance(x: torch.Tensor, n: int, lin: torch.Tensor) -> torch.Tensor:
    """lpips' per-layer term for the pairs (x[:n], x[n:]), mean_hw(sum_c w_c (xa_c/|xa| - xb_c/|xb|)^2)
    with |x| = norm over channels + 1e-10, in fewer passes over the activations than its normalise /
    subtract / square / 1x1-conv / mean: one norm and one scaling for both sides, the subtraction and
    squaring in place, and the weighted channel sum as a matrix-vector product over the channels-last
    pixels (on other layouts the squares are averaged first, then weighted: the sum commutes with the
    mean). Only float32 rounding differs (~1e-7; the tests hold it to the package within 1e-5), and
    equal inputs give exactly 0 (the difference is 0 before anything is summed).
    """
    unit = x * torch.linalg.vector_norm(x, dim=1, keepdim=True).add_(_EPS).reciprocal_()
    d = unit[:n].sub_(unit[n:]).square_()  # not addcmul: its fused multiply-add leaves ~1e-16 on equal inputs
    if d.is_contiguous(memory_format=torch.channels_last):
        return (d.permute(0, 2, 3, 1).reshape(n, -1, d.shape[1]) @ lin.view(-1)).mean(dim=1)
    return d.mean(dim=(2, 3)) @ lin.view(-1)


def pairs_per_chunk(height: int, width: int, device: torch.device) -> int:
    """Frame pairs per forward whose activations fit the device's working budget (`sizing.WORK_BYTES`).

    A pair holds ~120 bytes per pixel at the widest point (both float32 inputs, relu1's 64 channels at
    a quarter of the resolution, its normalised copy and squared difference): 854x480 -> 2 pairs on
    the CPU, 1920x1080 -> 1, 256x144 -> 21.
    """
    return max(1, work_bytes(device) // (120 * max(1, height * width)))


class LPIPS(FrameMetric):
    """LPIPS distance per frame (AlexNet, v0.1), lower is better."""

    name = "lpips"

    def __init__(self, device: str | torch.device = "cpu", *, weights_path: str | Path | None = None,
                 allow_unverified: bool = False, batch_size: int | None = None) -> None:
        """`batch_size`: frame pairs per forward (default: from the frame size, `pairs_per_chunk`)."""
        super().__init__(device)
        self.batch_size = batch_size
        self._resolved = resolve("alexnet", weights_path, allow_unverified=allow_unverified)
        self._linear_path = lpips_linear_weights_path()
        linear = load_state_dict(self._linear_path)
        self._linear_sha256: str | None = None
        try:
            self.net = inference_form(LPIPSNet(load_state_dict(self._resolved.path), linear), self.device)
        except (RuntimeError, KeyError) as exc:
            raise WeightsError(f"not an AlexNet/LPIPS state dict ({str(exc).splitlines()[0]})",
                               path=self._resolved.path,
                               hint="vcbench weights download alexnet") from None

    def weights_used(self) -> dict[str, WeightFile]:
        if self._linear_sha256 is None:
            self._linear_sha256 = sha256_file(self._linear_path)
        return {**self._resolved.used(), f"lpips-v0.1-{self._linear_path.name}": WeightFile(self._linear_sha256)}

    @torch.inference_mode()
    def distances(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """Per-frame LPIPS of uint8 (N,3,H,W) batches (float32 on the device)."""
        step = self.batch_size or pairs_per_chunk(pred.shape[-2], pred.shape[-1], self.device)
        out = []
        for i in range(0, pred.shape[0], step):
            out.append(self.net(pred[i:i + step].to(self.device), gt[i:i + step].to(self.device)))
        return torch.cat(out) if out else torch.zeros(0, device=self.device)

    def frame_values(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return self.distances(pred, gt)
