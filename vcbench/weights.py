"""Pretrained weights: one registry and one resolver for every network vcbench runs.

Order (DESIGN.md, "Weights"): an explicit path; `$TORCH_HOME/hub/checkpoints/<canonical file name>`
(the cache torchvision, lpips and pytorch-fid already fill, so existing downloads count); a checked
download from the canonical URL. File names follow torch hub's convention of carrying the leading
hex digits of their sha256, which is what is checked; a file that contradicts it is refused unless
the caller allows unverified weights, and the result says so, so runs can be marked.
"""

from __future__ import annotations

import functools
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from vcbench import hashing
from vcbench.download import OFFLINE_ENV, offline
from vcbench.download import download as _download_file
from vcbench.errors import DownloadError, WeightsError
from vcbench.paths import cache_dir

if TYPE_CHECKING:
    import torch

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{6,64})$")


def hash_prefix_from_filename(filename: str) -> str | None:
    """The hex after the last '-' of the stem (`alexnet-owt-7be5be79.pth` -> `7be5be79`), if any."""
    m = _HASH_IN_NAME.search(Path(filename).name.split(".")[0])
    return m.group(1) if m else None


@dataclass(frozen=True)
class WeightSpec:
    """One canonical weight file. `sha256_prefix` defaults to the hex carried by the file name."""

    name: str
    filename: str
    url: str
    sha256_prefix: str | None = None
    sha256: str | None = None
    description: str = ""
    #: Why the file cannot be fetched automatically (a dead link, a Google Drive page), or None when
    #: `url` is a direct download; such files are taken only from a path or the torch-hub cache.
    manual: str | None = None

    def __post_init__(self) -> None:
        if self.sha256_prefix is None and self.sha256 is None:
            object.__setattr__(self, "sha256_prefix", hash_prefix_from_filename(self.filename))

    @property
    def has_hash(self) -> bool:
        return bool(self.sha256 or self.sha256_prefix)

    def matches(self, digest: str) -> bool:
        """True when `digest` agrees with the published hash (or there is none to contradict it)."""
        if self.sha256 and digest.lower() != self.sha256.lower():
            return False
        if self.sha256_prefix and not digest.lower().startswith(self.sha256_prefix.lower()):
            return False
        return True


@dataclass(frozen=True)
class ResolvedWeights:
    """A weight file found on disk. `verified` is False only when the file contradicts the registry's
    hash (and the caller allowed it); `hash_checked` says whether a published hash existed at all
    (the DEVC zip has none: its loader checks the structure instead)."""

    path: Path
    sha256: str
    verified: bool
    name: str = ""
    source: str = ""  # "explicit", "cache" or "download"
    hash_checked: bool = True

    @property
    def filename(self) -> str:
        return self.path.name

    def used(self) -> dict[str, WeightFile]:
        """{file: WeightFile}, this file as a `weights_used()` entry."""
        return {self.path.name: WeightFile(self.sha256, self.verified)}


@dataclass(frozen=True)
class WeightFile:
    """One weight file a model, metric, flow estimator or descriptor used: what every `weights_used()`
    maps file names to. `verified` is False when the file contradicts its published hash (or the
    component cannot vouch for it); `digests` gives the {file: sha256} that runs and builds record."""

    sha256: str
    verified: bool = True


def _builtin_specs() -> dict[str, WeightSpec]:
    specs = [
        WeightSpec("inception_fid", "pt_inception-2015-12-05-6726825d.pth",
                   "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
                   description="FID InceptionV3 (TF-ported, pytorch-fid)"),
        WeightSpec("alexnet", "alexnet-owt-7be5be79.pth",
                   "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                   description="torchvision AlexNet, LPIPS backbone"),
        WeightSpec("vgg19", "vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
                   description="torchvision VGG19 IMAGENET1K_V1 (top1/top5, retrieval descriptor)"),
        WeightSpec("raft_large", "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                   "https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                   description="torchvision RAFT-large C_T_SKHT_V2 (flow)"),
        WeightSpec("flownet2_things", "flownet2-things-d63b53a7.ckpt",
                   "https://github.com/hmorimitsu/ptlflow/releases/download/weights1/flownet2-things-d63b53a7.ckpt",
                   description="ptlflow FlowNet2, FlyingThings checkpoint (flow, warp error default)"),
        WeightSpec("devc_zip", "colorization_checkpoint.zip",
                   "https://github.com/zhangmozhe/Deep-Exemplar-based-Video-Colorization/releases/download/v1.0/colorization_checkpoint.zip",
                   description="DEVC official checkpoints (WarpNet, ColorVidNet, VGG19 conv); no published hash"),
        WeightSpec("zhang16", "colorization_release_v2-9b330a0b.pth",
                   "https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth",
                   description="Zhang et al. 2016 colorization (richzhang/colorization)"),
        WeightSpec("zhang17", "siggraph17-df00044c.pth",
                   "https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth",
                   description="Zhang et al. 2017 interactive colorization (richzhang/colorization)"),
        WeightSpec("lai18", "ECCV18_blind_consistency.pth",
                   "https://vllab.ucmerced.edu/wlai24/video_consistency/models/ECCV18_blind_consistency.pth",
                   description="Lai et al. 2018 TransformNet (blind consistency); official link dead, no published "
                               "hash: put your copy here or pass its path",
                   manual="the official link is dead"),
        WeightSpec("maskrcnn_v2", "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
                   "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
                   description="torchvision Mask R-CNN ResNet-50 FPN v2, COCO (instcolor's detector)"),
        WeightSpec("instcolor_zip", "InstColorization_checkpoints.zip",
                   "https://drive.google.com/uc?export=download&id=1Xb-DKAA9ibCVLqm8teKd1MWk6imjwTBh",
                   description="InstColorization checkpoints.zip (Google Drive; no published hash), saved under "
                               "this name, or a folder holding coco_finetuned_mask_256_ffs/latest_net_{G,GF,GComp}.pth",
                   manual="it is shared as a Google Drive page, not a direct download"),
        WeightSpec("tcvc", "TCVC_IDC_80000_G.pth",
                   "https://drive.google.com/file/d/1nEim131CASkjgnc6MpE3FAkhZa5tFuMF/view?usp=sharing",
                   description="TCVC (Liu et al. 2021) TCVC_IDC 80000_G.pth, FlowNet2 and SIGGRAPH17 anchor net "
                               "included; Google Drive or Baidu (https://pan.baidu.com/s/1eSCUCfXjsDeLC5-qGytuiA, "
                               "token z8f4), no published hash",
                   manual="it is shared on Google Drive and Baidu Disk, not as a direct download"),
    ]
    return {s.name: s for s in specs}


#: name -> spec. Modules with their own networks add theirs with `register`.
REGISTRY: dict[str, WeightSpec] = _builtin_specs()
#: Other names users type for the same file.
ALIASES: dict[str, str] = {"devc": "devc_zip", "inception": "inception_fid", "flownet2": "flownet2_things",
                           "raft": "raft_large"}


def register(spec: WeightSpec) -> WeightSpec:
    """Add a weight file to the registry (idempotent for an identical spec)."""
    existing = REGISTRY.get(spec.name)
    if existing is not None and existing != spec:
        raise ValueError(f"weights {spec.name!r} are already registered with a different spec")
    REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> WeightSpec:
    spec = REGISTRY.get(ALIASES.get(name, name))
    if spec is None:
        raise WeightsError(f"unknown weights {name!r}", hint=f"known: {', '.join(sorted(REGISTRY))}")
    return spec


def torch_home() -> Path:
    """$TORCH_HOME (default ~/.cache/torch, honouring XDG_CACHE_HOME), as torch.hub computes it."""
    import torch.hub

    return Path(torch.hub.get_dir()).parent


def checkpoints_dir() -> Path:
    """Where torch hub, torchvision, lpips and pytorch-fid keep downloaded weights."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def cache_path(name: str) -> Path:
    return checkpoints_dir() / get_spec(name).filename


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return hashing.sha256_file_cached(path, cache_dir())  # across runs too, in the vcbench cache folder


def sha256_file(path: str | Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so 500 MB files are hashed once a run."""
    p = Path(path).resolve()
    st = p.stat()
    return _sha256_cached(str(p), st.st_size, st.st_mtime_ns)


def _download_command(spec: WeightSpec) -> str:
    return f"vcbench weights download {spec.name}"


def missing_hint(spec: WeightSpec) -> str:
    """The fix for a missing file, in one sentence: the command that fetches it, or where a copy goes."""
    if spec.manual:
        return (f"it cannot be downloaded automatically ({spec.manual}): get it from {spec.url} and put it at "
                f"{checkpoints_dir() / spec.filename}, or pass its path")
    return (f"run `{_download_command(spec)}` where there is network, or put a copy of {spec.url} at "
            f"{checkpoints_dir() / spec.filename}")


def missing_short(reason: str) -> str | None:
    """The short form of a "weights missing" reason for tables and reports (which may be read on
    another machine, so the folder is named as `$TORCH_HOME/hub/checkpoints/`), or None when `reason`
    names no registered weight file."""
    spec = next((s for s in REGISTRY.values() if s.filename in reason), None)
    if spec is None:
        return None
    return f"{spec.filename} missing (`{_download_command(spec)}`, or put a copy in $TORCH_HOME/hub/checkpoints/)"


def error_reason(exc: Exception) -> str:
    """A VcbenchError's own words without its path prefix and its hint (the caller gives a better one)."""
    text = str(exc)
    hint, path = getattr(exc, "hint", None), getattr(exc, "path", None)
    if hint:
        text = text.removesuffix(hint.rstrip(".") + ".").strip()
    if path is not None:
        text = text.removeprefix(f"{path}: ")
    return text.rstrip(".")


def _check(spec: WeightSpec, path: Path, source: str, allow_unverified: bool) -> ResolvedWeights:
    digest = sha256_file(path)
    ok = spec.matches(digest)
    if not ok and not allow_unverified:
        expected = spec.sha256 or f"{spec.sha256_prefix}..."
        raise WeightsError(
            f"sha256 {digest[:16]}... does not match the registry's {expected} for {spec.name}",
            path=path,
            hint=f"delete it and run `{_download_command(spec)}`, or pass --allow-unverified-weights to use it anyway "
                 "(the run will be marked unverified)",
        )
    return ResolvedWeights(path=path, sha256=digest, verified=ok, name=spec.name, source=source,
                           hash_checked=spec.has_hash)


def resolve(name: str, path: str | Path | None = None, *, download: bool = True, allow_unverified: bool = False,
            quiet: bool = False) -> ResolvedWeights:
    """Find `name`'s weight file: explicit `path`, then the torch hub cache, then a checked download.

    Raises WeightsError naming the file, its URL and the fetching command when it cannot be had.
    """
    spec = get_spec(name)
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsError(f"weights file for {spec.name} not found", path=p,
                               hint=f"check the path, or drop it to use {checkpoints_dir() / spec.filename}")
        return _check(spec, p, "explicit", allow_unverified)
    cached = checkpoints_dir() / spec.filename
    if cached.is_file():
        return _check(spec, cached, "cache", allow_unverified)
    if not download or offline() or spec.manual:
        why = (f"offline ({OFFLINE_ENV}=1)" if offline() else "downloads disabled") if not spec.manual else \
            "has no direct download"
        raise WeightsError(f"weights file {spec.filename} ({spec.name}) is not in the cache and {why}",
                           hint=missing_hint(spec))
    try:
        _download_file(spec.url, cached, sha256=spec.sha256, sha256_prefix=spec.sha256_prefix, quiet=quiet)
    except DownloadError as exc:
        raise WeightsError(f"weights file {spec.filename} ({spec.name}) is not in the cache and could not be "
                           f"downloaded ({error_reason(exc)})", hint=missing_hint(spec)) from exc
    return _check(spec, cached, "download", allow_unverified)


def status(name: str) -> tuple[str, Path, str | None]:
    """("verified" | "unverified" | "unchecked" | "missing", path, sha256) for the cached file.

    "unchecked": present, but the registry has no published hash to compare against.
    """
    spec = get_spec(name)
    p = checkpoints_dir() / spec.filename
    if not p.is_file():
        return "missing", p, None
    digest = sha256_file(p)
    if not spec.has_hash:
        return "unchecked", p, digest
    return ("verified" if spec.matches(digest) else "unverified"), p, digest


def load_state_dict(path: str | Path, key: str | None = None, *, data: bytes | None = None) -> dict[str, Any]:
    """Load a checkpoint with `torch.load(weights_only=True)` on the CPU: tensors and plain
    containers only, never a pickle of code. `key` selects a nested dict (e.g. "state_dict").
    `data` is the checkpoint's bytes when it was read from elsewhere (a zip member); `path` then only
    names it in errors. The one place vcbench unpickles weights."""
    import io

    import torch

    path = Path(path)
    # A file in torch's zip format is memory-mapped: only the tensors a network uses are read (LPIPS
    # needs 10 of AlexNet's 233 MB, the classifier never; 125 -> 10 ms), and none is held twice.
    mmap = data is None and zipfile.is_zipfile(path)
    try:
        obj = torch.load(io.BytesIO(data) if data is not None else path, map_location="cpu", weights_only=True,
                         mmap=mmap)
    except FileNotFoundError as exc:
        raise WeightsError("weights file not found", path=path) from exc
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"refused to load: not a plain tensor checkpoint ({first[:200]})", path=path,
                           hint="vcbench loads weights with weights_only=True; re-save it as a state dict") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"corrupt or truncated weights file ({first[:200]})", path=path,
                           hint="delete it and download it again") from exc
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise WeightsError(f"checkpoint has no {key!r} entry", path=path)
        obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsError(f"checkpoint holds a {type(obj).__name__}, not a state dict", path=path)
    return obj


def build_loaded(build: Callable[[], torch.nn.Module], state_dict: dict[str, torch.Tensor]) -> torch.nn.Module:
    """`build()` on the meta device, then `state_dict` loaded strictly into it (assigned, not copied).

    A torchvision constructor spends ~0.2-0.3 s drawing a random init that loading then overwrites;
    on the meta device nothing is drawn. Raises RuntimeError (as `load_state_dict` does) on missing or
    unexpected keys, and when a shape differs.
    """
    import torch

    with torch.device("meta"):
        net = build()
    want = {k: t.dtype for k, t in net.state_dict().items()}
    # Assigning keeps a tensor's dtype; the network's own (float32) is what copying would have given.
    state_dict = {k: v.to(want[k]) if k in want and v.is_floating_point() else v for k, v in state_dict.items()}
    net.load_state_dict(state_dict, strict=True, assign=True)
    left = [n for n, t in [*net.named_parameters(), *net.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"not set by the state dict: {', '.join(left[:5])}")
    return net


def load_built(name: str, build: Callable[[dict[str, Any]], torch.nn.Module], *, what: str,
               path: str | Path | None = None,
               allow_unverified: bool = False) -> tuple[ResolvedWeights, torch.nn.Module]:
    """Resolve the weight file `name` and `build(state_dict)` strictly (usually through `build_loaded`),
    as the metrics' networks and InstColor's detector load. A state dict that does not fit is a
    `WeightsError` naming the file (`what` says what it should be)."""
    resolved = resolve(name, path, allow_unverified=allow_unverified)
    try:
        net = build(load_state_dict(resolved.path))
    except (RuntimeError, KeyError) as exc:
        raise WeightsError(f"not {what} state dict ({str(exc).splitlines()[0][:200]})", path=resolved.path,
                           hint=f"vcbench weights download {name}") from None
    return resolved, net


def digests(used: Mapping[str, WeightFile]) -> dict[str, str]:
    """{file name: sha256} of a `weights_used()` dict: the protocol's, a run's and a build's record."""
    return {name: f.sha256 for name, f in used.items()}


def unverified(used: Mapping[str, WeightFile]) -> list[str]:
    """The files of a `weights_used()` dict that are not verified: reported so, or whose sha256
    contradicts the registry's published hash (a file the component loaded without the resolver)."""
    bad = {name for name, f in used.items() if not f.verified}
    for spec in REGISTRY.values():
        f = used.get(spec.filename)
        if f is not None and spec.has_hash and not spec.matches(f.sha256):
            bad.add(spec.filename)
    return sorted(bad)
