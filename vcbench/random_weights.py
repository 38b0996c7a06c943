"""Random-init weight files in the official layouts: the real keys, shapes and file names, random values.

Neither CI nor a lent GPU machine has pretrained weights, and neither may download them. Tests and
benchmarks still run vcbench's real resolver and loaders (strict state-dict loads, the DEVC zip's
member lookup, ptlflow's Lightning checkpoint) on files written here under their canonical names,
usually in a temporary `$TORCH_HOME/hub/checkpoints`. Speed does not depend on the values; the
hashes never match the registry's, so loaders need `allow_unverified`. Seeds are fixed and the
global torch RNG is left as it was.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from vcbench.weights import get_spec

#: Where the official release zip keeps DEVC's three files (members are found by base name).
DEVC_ZIP_LAYOUT = {
    "warpnet": "checkpoints/video_moredata_l1/nonlocal_net_iter_76000.pth",
    "colornet": "checkpoints/video_moredata_l1/colornet_iter_76000.pth",
    "vgg": "data/vgg19_conv.pth",
}


def _seeded(build: Callable[[], torch.nn.Module], seed: int) -> dict[str, torch.Tensor]:
    """`build()`'s state dict under torch.manual_seed(seed), without disturbing the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().state_dict()


def alexnet_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision AlexNet (the LPIPS backbone, `alexnet-owt-7be5be79.pth`)."""
    from torchvision.models import alexnet

    return _seeded(lambda: alexnet(weights=None), seed)


def vgg19_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision VGG19 (top1/top5, `vgg19-dcbb9e9d.pth`); 548 MB to initialise."""
    from torchvision.models import vgg19

    return _seeded(lambda: vgg19(weights=None), seed)


def fid_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """pytorch-fid's FID InceptionV3 (`pt_inception-2015-12-05-6726825d.pth`); pytorch-fid's own
    strict loader accepts it. Weights Kaiming-normal (sqrt(2 / fan_in): activations keep their scale
    through the 94 convolutions), the fc bias small, BatchNorm the identity (unit scale and variance,
    zero shift and mean). Built on vcbench's own copy of the architecture, so neither torchvision nor
    pytorch-fid is needed (the GPU machine's image has no pytorch-fid)."""
    import math

    from vcbench.metrics.inception_net import FIDInceptionV3  # lazy: random_weights is tooling, loaded by tests

    with torch.device("meta"):
        shapes = {k: (v.shape, v.dtype) for k, v in FIDInceptionV3().state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for k, (shape, dtype) in shapes.items():
        if len(shape) > 1:
            out[k] = torch.randn(shape, generator=g) * math.sqrt(2.0 / math.prod(shape[1:]))
        elif k == "fc.bias":
            out[k] = torch.randn(shape, generator=g) * 0.01
        elif k.endswith(("bn.weight", "running_var")):
            out[k] = torch.ones(shape, dtype=dtype)
        else:  # bn.bias, running_mean, num_batches_tracked
            out[k] = torch.zeros(shape, dtype=dtype)
    return out


def raft_large_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision RAFT-large (`raft_large_C_T_SKHT_V2-ff5fadd5.pth`)."""
    from torchvision.models.optical_flow import raft_large

    return _seeded(lambda: raft_large(weights=None, progress=False), seed)


def flownet2_checkpoint(seed: int = 0) -> dict[str, Any]:
    """A ptlflow-style Lightning checkpoint of FlowNet2 (`flownet2-things-d63b53a7.ckpt`). Needs ptlflow.

    All 162M parameters are views of one random pool as large as the largest tensor (torch.save
    stores a shared storage once), so the file is 38 MB instead of 650 MB.
    """
    from vcbench.flow.flownet2 import import_ptlflow_flownet2  # lazy: random_weights is tooling, loaded by tests

    _, FlowNet2 = import_ptlflow_flownet2()
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in FlowNet2().state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    pool = (torch.rand(max(s.numel() for s in shapes.values()), generator=g) - 0.5) * 0.1
    return {"state_dict": {k: pool[:s.numel()].view(s) for k, s in shapes.items()},
            "hyper_parameters": {"train_size": [384, 512]}, "pytorch-lightning_version": "2.0.0"}


def devc_states(seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """{"warpnet", "colornet", "vgg"}: DEVC's three state dicts with the official keys and shapes."""
    from vcbench.baselines.devc.inference import DEVCNet  # lazy: random_weights is tooling, loaded by tests

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DEVCNet()
    parts = {"warpnet": net.warpnet, "colornet": net.colornet, "vgg": net.vgg}
    return {k: {n: t.clone() for n, t in parts[k].state_dict().items()} for k in DEVC_ZIP_LAYOUT}


def write_devc_zip(path: Path, states: dict[str, dict[str, Any]], layout: dict[str, str] = DEVC_ZIP_LAYOUT,
                   prefix: str = "") -> Path:
    """DEVC's state dicts packed as the release zip lays them out (`layout`: part -> member path);
    `prefix` is put before every key (e.g. DataParallel's "module.")."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for which, member in layout.items():
            buf = io.BytesIO()
            torch.save({prefix + k: v for k, v in states[which].items()}, buf)
            zf.writestr(member, buf.getvalue())
    return path


def tcvc_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """TCVC's `80000_G.pth` (`TCVC_IDC_80000_G.pth`): the whole TCVC_IDC state dict, FlowNet2 and the
    SIGGRAPH17 anchor net included (~200M parameters).

    As for FlowNet2 above, tensors are views of a few shared pools (a 65 MB file, not 790 MB): the
    weights whose fan-in lies in one octave share one pool, Kaiming-uniform for that octave
    (sqrt(6 / fan_in)), so that the random network's activations neither vanish nor overflow through
    its ~40 layers; biases share one small pool; BatchNorm gets unit scale and variance, zero shift
    and mean.
    """
    import math

    import torch.nn as nn

    from vcbench.baselines.tcvc.networks import TCVCNet  # lazy: random_weights is tooling, loaded by tests

    with torch.device("meta"):
        net = TCVCNet()
    norm_keys = {f"{name}.{p}": p for name, mod in net.named_modules() if isinstance(mod, nn.BatchNorm2d)
                 for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    octave = {k: int(math.log2(math.prod(s[1:]))) for k, s in shapes.items() if len(s) > 1}
    g = torch.Generator().manual_seed(seed)
    pools = {o: (torch.rand(max(math.prod(shapes[k]) for k in octave if octave[k] == o), generator=g) * 2 - 1)
             * math.sqrt(6.0 / 2 ** (o + 0.5)) for o in sorted(set(octave.values()))}
    biases = (torch.rand(max(math.prod(s) for s in shapes.values() if len(s) == 1), generator=g) - 0.5) * 0.02
    widest = max(math.prod(shapes[k]) for k in norm_keys)
    ones, zeros = torch.ones(widest), torch.zeros(widest)
    out: dict[str, torch.Tensor] = {}
    for k, s in shapes.items():
        n = math.prod(s)
        kind = norm_keys.get(k)
        if kind == "num_batches_tracked":
            out[k] = torch.tensor(0)
        elif kind in ("weight", "running_var"):
            out[k] = ones[:n].view(s)
        elif kind in ("bias", "running_mean"):
            out[k] = zeros[:n].view(s)
        else:
            out[k] = (pools[octave[k]] if k in octave else biases)[:n].view(s)
    return out


#: Registry name (vcbench.weights) -> what is saved under its canonical file name.
BUILDERS: dict[str, Callable[[int], Any]] = {
    "alexnet": alexnet_state,
    "vgg19": vgg19_state,
    "inception_fid": fid_inception_state,
    "raft_large": raft_large_state,
    "flownet2_things": flownet2_checkpoint,
    "tcvc": tcvc_state,
}


#: The scorer's networks: LPIPS backbone, top1/top5 classifier, FID/KID Inception.
METRIC_WEIGHTS = ("alexnet", "vgg19", "inception_fid")


def write_random_weights(folder: str | Path, names: Iterable[str], seed: int = 0) -> dict[str, Path]:
    """Write random-init files for registry `names` (BUILDERS, plus "devc_zip") into `folder` under
    their canonical names; returns {name: path}. A builder whose package is missing raises the
    resolver's MissingDependencyError (FlowNet2: ptlflow); the FID Inception needs no extra package."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name in names:
        path = folder / get_spec(name).filename
        if name == "devc_zip":
            write_devc_zip(path, devc_states(seed))
        elif name in BUILDERS:
            torch.save(BUILDERS[name](seed), path)
        else:
            raise KeyError(f"no random-weights builder for {name!r} (have {', '.join([*BUILDERS, 'devc_zip'])})")
        out[name] = path
    return out
