"""TCVC's published checkpoint: `experiments/TCVC_IDC/models/80000_G.pth` of lyh-18/TCVC.

It is shared only through Google Drive and Baidu Disk (the official README's links) and no hash was
published, so it is never downloaded: the resolver takes a user's copy by path or from
`$TORCH_HOME/hub/checkpoints/TCVC_IDC_80000_G.pth`, and its sha256 is recorded with every run. The
file is the whole TCVC_IDC state dict, anchor colorizer (`fea_key.*`) and FlowNet2 (`flow.*`)
included, so the separate FlowNet2 and SIGGRAPH17 files of the README are not needed. A path may
also name a folder or a zip (what a Drive folder download gives) holding one `80000_G.pth`.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import torch

from vcbench import weights as registry
from vcbench.errors import WeightsError

WEIGHTS_NAME = "tcvc"
MEMBER = "80000_G.pth"
DRIVE = "https://drive.google.com/file/d/1nEim131CASkjgnc6MpE3FAkhZa5tFuMF/view?usp=sharing"
BAIDU = "https://pan.baidu.com/s/1eSCUCfXjsDeLC5-qGytuiA (token z8f4)"
HOW = (f"download the TCVC model from {DRIVE} or {BAIDU} (lyh-18/TCVC's README) and save "
       f"TCVC_IDC/models/{MEMBER} as $TORCH_HOME/hub/checkpoints/TCVC_IDC_80000_G.pth, or pass "
       "--model-option weights=PATH (the file, or a folder or zip holding it)")

SPEC = registry.get_spec(WEIGHTS_NAME)  # built in to vcbench.weights, so `vcbench weights list` shows it


def _member(path: Path) -> tuple[bytes, str]:
    """(bytes, sha256) of the one `80000_G.pth` in a folder or zip."""
    if path.is_dir():
        hits = [p for p in path.rglob(MEMBER) if p.is_file()]
        if len(hits) != 1:
            raise WeightsError(f"the folder holds {len(hits)} files named {MEMBER} (expected one)", path=path, hint=HOW)
        data = hits[0].read_bytes()
    else:
        try:
            with zipfile.ZipFile(path) as zf:
                hits = [n for n in zf.namelist() if n.replace("\\", "/").rsplit("/", 1)[-1] == MEMBER]
                if len(hits) != 1:
                    raise WeightsError(f"the zip holds {len(hits)} files named {MEMBER} (expected one)", path=path,
                                       hint=HOW)
                data = zf.read(hits[0])
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise WeightsError(f"not a readable zip archive ({exc})", path=path, hint=HOW) from exc
    return data, hashlib.sha256(data).hexdigest()


def load_tcvc_state(path: str | Path | None, *, allow_unverified: bool = False,
                    quiet: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, str], bool, Path]:
    """(state dict, {file: sha256}, verified, source) of the TCVC checkpoint, loaded with weights_only."""
    if path is not None and Path(path).expanduser().is_dir():
        source = Path(path).expanduser()
        data, digest = _member(source)
        sha, verified = {MEMBER: digest}, True
    else:
        resolved = registry.resolve(WEIGHTS_NAME, path, download=False, allow_unverified=allow_unverified, quiet=quiet)
        source, verified = Path(resolved.path), resolved.verified
        sha = {source.name: resolved.sha256}
        data = None
        if zipfile.is_zipfile(source):  # a .pth saved by torch >= 1.6 is a zip too, without this member
            with zipfile.ZipFile(source) as zf:
                if any(n.replace("\\", "/").rsplit("/", 1)[-1] == MEMBER for n in zf.namelist()):
                    data, sha[MEMBER] = _member(source)
    state = registry.load_state_dict(source / MEMBER if data is not None else source, data=data)
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError("not a state dict of tensors (expected TCVC_IDC's, as 80000_G.pth holds)", path=source,
                           hint=HOW)
    return state, sha, verified, source
