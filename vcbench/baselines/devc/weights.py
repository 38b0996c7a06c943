"""Find, verify and load DEVC's three weight files from the official release zip (or a folder).

The release (`colorization_checkpoint.zip`, v1.0) holds `checkpoints/video_moredata_l1/
nonlocal_net_iter_76000.pth`, `.../colornet_iter_76000.pth` and `data/vgg19_conv.pth`; mirrors
re-pack it with other folder layouts, so members are found by base name. Members are read straight
from the zip (nothing is extracted, so no member can land outside a folder), loaded with
`weights_only=True`, and checked by a strict state-dict load, the only verification possible since
no hashes are published. The sha256 of the zip and of every member is recorded for the run.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vcbench import weights as registry
from vcbench.errors import WeightsError

ZIP_URL = ("https://github.com/zhangmozhe/Deep-Exemplar-based-Video-Colorization/releases/download/v1.0/"
           "colorization_checkpoint.zip")
WARPNET_FILE = "nonlocal_net_iter_76000.pth"
COLORNET_FILE = "colornet_iter_76000.pth"
VGG_FILE = "vgg19_conv.pth"
MEMBERS = (WARPNET_FILE, COLORNET_FILE, VGG_FILE)
PATH_OPTION = ("or pass `--weights PATH` (Python: DEVC(weights=PATH)) with the zip or a folder holding its "
               "three .pth files")
HOW_TO_GET = (f"run `vcbench weights download devc`, or put a copy of {ZIP_URL} in $TORCH_HOME/hub/checkpoints/, "
              + PATH_OPTION)
#: The hint of a state dict that does not fit DEVC's networks (`checkpoints.load_strict`).
STRICT_HINT = "use the official release zip; " + HOW_TO_GET


@dataclass
class DEVCWeights:
    """The three state dicts and the sha256 of every file they came from."""

    warpnet: dict[str, torch.Tensor]
    colornet: dict[str, torch.Tensor]
    vgg: dict[str, torch.Tensor]
    sha256: dict[str, str] = field(default_factory=dict)
    source: Path | None = None
    verified: bool = False


def _load_bytes(data: bytes, what: str, where: Path) -> dict[str, torch.Tensor]:
    try:
        obj = registry.load_state_dict(where, data=data)
    except WeightsError as exc:
        reason = str(exc).removeprefix(f"{where}: ")
        if exc.hint:
            reason = reason.removesuffix(exc.hint.rstrip(".") + ".").strip()
        reason = reason.rstrip(".")
        raise WeightsError(f"cannot load {what} with weights_only=True ({reason})", path=where, hint=HOW_TO_GET) from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{what} is not a state dict of tensors", path=where, hint=HOW_TO_GET)
    return dict(obj)


def _from_zip(path: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsError(f"not a readable zip archive ({exc})", path=path,
                           hint="delete it and " + HOW_TO_GET) from exc
    blobs: dict[str, bytes] = {}
    with zf:
        by_base: dict[str, list[str]] = {}
        for info in zf.infolist():
            if not info.is_dir():
                by_base.setdefault(Path(info.filename.replace("\\", "/")).name, []).append(info.filename)
        for base in MEMBERS:
            names = by_base.get(base, [])
            if not names:
                raise WeightsError(f"the zip holds no {base}", path=path, hint=HOW_TO_GET)
            if len(names) > 1:
                raise WeightsError(f"the zip holds {len(names)} files named {base} ({', '.join(names)}); "
                                   "cannot tell which to use", path=path, hint="pass --weights to a folder holding one of each")
            try:
                blobs[base] = zf.read(names[0])
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise WeightsError(f"corrupt zip member {names[0]} ({exc})", path=path,
                                   hint="delete it and " + HOW_TO_GET) from exc
    return blobs, {base: hashlib.sha256(b).hexdigest() for base, b in blobs.items()}


def _from_folder(path: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    blobs: dict[str, bytes] = {}
    for base in MEMBERS:
        found = sorted(p for p in path.rglob(base) if p.is_file())
        if not found:
            raise WeightsError(f"the folder holds no {base} (searched its sub-folders too)", path=path, hint=HOW_TO_GET)
        if len(found) > 1:
            raise WeightsError(f"the folder holds {len(found)} files named {base}; cannot tell which to use",
                               path=path, hint="keep one copy of each file")
        blobs[base] = found[0].read_bytes()
    return blobs, {base: hashlib.sha256(b).hexdigest() for base, b in blobs.items()}


def load_devc_weights(path: str | Path | None = None, *, download: bool = True,
                      allow_unverified: bool = False, quiet: bool = False) -> DEVCWeights:
    """Resolve the release zip (explicit path, $TORCH_HOME cache, download) or read a folder, and
    load the three state dicts. `path` may be the zip or a folder with the three .pth files."""
    sha: dict[str, str] = {}
    verified = False
    if path is not None and Path(path).is_dir():
        source = Path(path)
        blobs, member_sha = _from_folder(source)
    else:
        try:
            resolved = registry.resolve("devc", path, download=download,
                                        allow_unverified=allow_unverified, quiet=quiet)
        except WeightsError as exc:
            if path is not None:
                raise
            raise WeightsError(registry.error_reason(exc), path=exc.path,
                               hint=f"{(exc.hint or '').rstrip('.')}, {PATH_OPTION}") from exc
        source = Path(resolved.path)
        sha[source.name] = resolved.sha256
        verified = bool(resolved.verified)
        blobs, member_sha = _from_zip(source)
    sha.update(member_sha)
    dicts = {base: _load_bytes(data, base, source) for base, data in blobs.items()}
    return DEVCWeights(dicts[WARPNET_FILE], dicts[COLORNET_FILE], dicts[VGG_FILE], sha, source, verified)
