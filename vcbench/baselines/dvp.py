"""`dvp`: Deep Video Prior (Lei, Xing & Chen, NeurIPS 2020), a test-time-trained post-process.

"Blind Video Temporal Consistency via Deep Video Prior": a U-Net initialised at random is trained
on the clip itself, mapping each grey input frame to the base model's colorized frame; because a
CNN fits the consistent part of a video before its flicker, the trained network's outputs are
temporally consistent. No pretrained weights: it runs offline.

As the official code does it (ChenyangLEI/deep-video-prior, `main_IRT.py` and the colorization line
of `test.sh`: `--max_epoch 50 --with_IRT 1 --IRT_initialization 1`):

- Network: the paper's U-Net (`models/network.py` `VCN`): 32 channels, doubling over 5 levels,
  1x1 then 3x3 convolutions, leaky ReLU 0.2, 2x2 max-pooling; decoder steps upsample x2 bilinearly
  (TensorFlow 1's resize without half-pixel centres), a 3x3 convolution without activation,
  concatenation with the skip, two 3x3 convolutions; a last 3x3 convolution with no activation.
  Xavier-uniform weights, zero biases, seed 2020. With IRT it has 6 output channels: a main and a
  minor RGB output.
- Iteratively reweighted training (IRT), colorization setting: epochs 1-5 (the IRT initialisation)
  train on the first frame only, one step per frame of the clip, with the loss
  mean|main - P| + 0.9 mean|minor - P|; the remaining epochs (of 50) visit the frames in order, one
  Adam step each, with the confidence loss mean(|main - P| C) + mean(|minor - P| (1 - C)), where
  C = [max_c |main - P| / (I + 0.1) < max_c |minor - P| / (I + 0.1)] per pixel (I the input frame,
  P the processed frame, both RGB in [0, 1]). Adam, learning rate 1e-4, batch of one frame.
- Output: the main output of the trained network on every frame, clipped to [0, 1], x255 truncated.

Differences (documented, not hidden): the official code crops frames to multiples of 32 (losing
the right and bottom border); here frames are reflect-padded to multiples of 32 and the output is
cropped back, so every GT pixel gets a prediction. `max_side` (default none) bounds the cost: the
clip is trained and inferred with its longer side scaled to at most that many pixels, and the
output's ab is upsampled bilinearly and joined with the GT's full-resolution L (DESIGN.md, "What
models see and return"). `luminance="input"` always does that join, "network" (the default, as the
official code) returns the network's RGB at native size. TensorFlow's Adam applies epsilon before
bias correction, PyTorch's after; with eps=1e-8 the difference is below float32 resolution here.

Determinism: on the CPU a run is byte-identical for the same frames, options, seed and thread count
(there is no sampling: frames are visited in order). On CUDA, cuDNN's convolution backward and
max-pool backward accumulate with atomics, so runs differ in the last bits and drift apart over
training; `deterministic=True` makes cuDNN pick deterministic convolution algorithms while
training (slower), which leaves only max-pool backward non-deterministic.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from vcbench.baselines.wrappers import Wrapper
from vcbench.errors import InputError
from vcbench.lab import lab_to_rgb_uint8, rgb_uint8_to_lab

#: Official colorization setting (test.sh): 50 epochs with IRT and its initialisation (epoch < 6).
EPOCHS, INIT_EPOCHS, LR, SEED, CHANNELS, MULTIPLE = 50, 5, 1e-4, 2020, 32, 32
MINOR_WEIGHT, CONF_EPS = 0.9, 0.1


def tf_upsample2x(x: torch.Tensor) -> torch.Tensor:
    """x2 bilinear upsampling as TensorFlow 1's `resize_images` (no half-pixel centres, no corner
    alignment): out[2i] = in[i], out[2i+1] = (in[i] + in[min(i+1, n-1)]) / 2, on both axes."""
    for dim in (2, 3):
        n = x.shape[dim]
        nxt = torch.cat([x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)], dim) if n > 1 else x
        x = torch.stack([x, 0.5 * (x + nxt)], dim=dim + 1).flatten(dim, dim + 1)
    return x


class VCN(nn.Module):
    """The DVP U-Net (official `VCN`), layer names after its TensorFlow scopes."""

    def __init__(self, out_channels: int = 6, channels: int = CHANNELS) -> None:
        super().__init__()
        c = channels
        widths = [c, 2 * c, 4 * c, 8 * c, 16 * c]
        self.g_conv1_1 = nn.Conv2d(3, c, 1)
        self.g_conv1_2 = nn.Conv2d(c, c, 3, padding=1)
        for lvl in range(2, 6):
            cin, cout = widths[lvl - 2], widths[lvl - 1]
            setattr(self, f"g_conv{lvl}_1", nn.Conv2d(cin, cout, 3, padding=1))
            setattr(self, f"g_conv{lvl}_2", nn.Conv2d(cout, cout, 3, padding=1))
        for k, lvl in enumerate(range(6, 10), start=1):  # decoder: g_up_k then g_conv{6..9}_{1,2}
            cin, cout = widths[4 - k + 1], widths[4 - k]
            setattr(self, f"g_up_{k}", nn.Conv2d(cin, cout, 3, padding=1))
            setattr(self, f"g_conv{lvl}_1", nn.Conv2d(2 * cout, cout, 3, padding=1))
            setattr(self, f"g_conv{lvl}_2", nn.Conv2d(cout, cout if lvl < 9 else out_channels, 3, padding=1))

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Xavier-uniform weights and zero biases (slim's defaults with `xavier_initializer()`)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                with torch.no_grad():
                    m.weight.copy_(torch.rand(m.weight.shape, generator=generator, dtype=torch.float32) * 2 * bound - bound)
                    m.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731 - lrelu = max(0.2 x, x)
        skips = []
        h = act(self.g_conv1_2(act(self.g_conv1_1(x))))
        for lvl in range(2, 6):
            skips.append(h)
            h = F.max_pool2d(h, 2)
            h = act(getattr(self, f"g_conv{lvl}_2")(act(getattr(self, f"g_conv{lvl}_1")(h))))
        for k, lvl in enumerate(range(6, 10), start=1):
            h = torch.cat([getattr(self, f"g_up_{k}")(tf_upsample2x(h)), skips[-k]], 1)
            h = act(getattr(self, f"g_conv{lvl}_1")(h))
            h = getattr(self, f"g_conv{lvl}_2")(h)
            if lvl < 9:
                h = act(h)
        return h


def irt_losses(pred: torch.Tensor, processed: torch.Tensor, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(initialisation loss, confidence loss) of IRT for a 6-channel prediction."""
    main, minor = pred[:, :3], pred[:, 3:6]
    err_main, err_minor = (main - processed).abs(), (minor - processed).abs()
    init = err_main.mean() + MINOR_WEIGHT * err_minor.mean()
    with torch.no_grad():
        d_main = (err_main / (inp + CONF_EPS)).amax(1, keepdim=True)
        d_minor = (err_minor / (inp + CONF_EPS)).amax(1, keepdim=True)
        conf = (d_main < d_minor).to(pred.dtype).expand_as(main)
    conf_loss = (err_main * conf).mean() + (err_minor * (1 - conf)).mean()
    return init, conf_loss


def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


@contextlib.contextmanager
def _cudnn_deterministic(on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    old = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old


class DVP(Wrapper):
    """Deep Video Prior: a U-Net trained on the clip itself towards the base model's frames (IRT)."""

    wrapper_name = "dvp"
    description = "Deep Video Prior test-time training with IRT (Lei et al. NeurIPS 2020)"
    #: The whole clip arrives in one `colorize` call: training needs every frame before any output.
    batch_size = 1 << 30

    def __init__(self, base, device: str | torch.device | None = None, *, epochs: int = EPOCHS,
                 init_epochs: int = INIT_EPOCHS, lr: float = LR, seed: int = SEED, max_side: int | None = None,
                 luminance: str = "network", deterministic: bool = False) -> None:
        if int(epochs) < 1 or int(init_epochs) < 0:
            raise InputError(f"dvp needs epochs >= 1 and init_epochs >= 0, got epochs={epochs}, init_epochs={init_epochs}")
        if max_side is not None and int(max_side) < MULTIPLE:
            raise InputError(f"dvp max_side must be at least {MULTIPLE} pixels, got {max_side}")
        if luminance not in ("network", "input"):
            raise InputError(f"dvp luminance must be 'network' or 'input', got {luminance!r}")
        super().__init__(base, device, epochs=int(epochs), init_epochs=int(init_epochs), lr=float(lr), seed=int(seed),
                         max_side=None if max_side is None else int(max_side), luminance=luminance)
        self.deterministic = bool(deterministic)  # how CUDA runs, not what is computed: not in config
        self._done = False
        self.last_losses: list[float] = []

    def start_clip_own(self, references) -> None:
        self._done = False

    def _train_size(self, h: int, w: int) -> tuple[int, int]:
        cap = self.options["max_side"]
        if cap is None or max(h, w) <= cap:
            return h, w
        s = cap / max(h, w)
        return max(1, round(h * s)), max(1, round(w * s))

    def colorize(self, luminance: torch.Tensor) -> torch.Tensor:
        if self._done:
            raise InputError("dvp trains on the whole clip: it must receive all of a clip's frames in one colorize "
                             "call (the harness does so; in Python pass the whole clip)")
        self._done = True
        L = luminance.to(self.device, torch.float32)
        processed = self.base_frames(L)
        gray = lab_to_rgb_uint8(torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], 1))
        n, _, h, w = L.shape
        th, tw = self._train_size(h, w)
        inp = gray.float() / 255.0
        tgt = processed.float() / 255.0
        if (th, tw) != (h, w):
            inp = F.interpolate(inp, size=(th, tw), mode="bilinear", align_corners=False, antialias=True)
            tgt = F.interpolate(tgt, size=(th, tw), mode="bilinear", align_corners=False, antialias=True)
        inp, tgt = _pad_to(inp, MULTIPLE), _pad_to(tgt, MULTIPLE)
        net = self._train(inp, tgt)
        with torch.no_grad():
            main = torch.cat([net(inp[i:i + 1])[:, :3] for i in range(n)])[:, :, :th, :tw]
        rgb = (main.clamp(0, 1) * 255.0).to(torch.uint8)
        if (th, tw) == (h, w) and self.options["luminance"] == "network":
            return rgb
        ab = rgb_uint8_to_lab(rgb)[:, 1:]
        if (th, tw) != (h, w):
            ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
        return lab_to_rgb_uint8(torch.cat([L, ab], 1))

    def _train(self, inp: torch.Tensor, tgt: torch.Tensor) -> VCN:
        o = self.options
        n = inp.shape[0]
        self.last_losses = []
        # The harness runs models under inference_mode; the training lives outside it.
        with torch.inference_mode(False), torch.enable_grad(), _cudnn_deterministic(self.deterministic):
            inp, tgt = inp.clone(), tgt.clone()
            gen = torch.Generator().manual_seed(o["seed"])
            net = VCN(out_channels=6)
            net.reset_parameters(gen)
            net = net.to(self.device).train()
            opt = torch.optim.Adam(net.parameters(), lr=o["lr"], betas=(0.9, 0.999), eps=1e-8)
            for epoch in range(1, o["epochs"] + 1):
                initialising = epoch <= o["init_epochs"]
                total = 0.0
                for i in range(n):
                    k = 0 if initialising else i
                    x, p = inp[k:k + 1], tgt[k:k + 1]
                    init_loss, conf_loss = irt_losses(net(x), p, x)
                    loss = init_loss if initialising else conf_loss
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach())
                self.last_losses.append(total / n)
        return net.eval().requires_grad_(False)
