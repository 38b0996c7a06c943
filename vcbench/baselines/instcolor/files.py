"""InstColorization's published checkpoints: `checkpoints.zip` (Google Drive, no published hash) holds
`checkpoints/coco_finetuned_mask_256_ffs/latest_net_{G,GF,GComp}.pth`, the files the official
`test_fusion.py` loads (`setup_to_test('coco_finetuned_mask_256_ffs')`); other folders of the zip hold
files with the same base names, so members are found by folder and name. Accepted: the zip (explicit
path, or `$TORCH_HOME/hub/checkpoints/InstColorization_checkpoints.zip`) or a folder holding the
three files (searched below it). Loaded with weights_only; the sha256 of the zip (when one is used)
and of each member are recorded.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import torch

from vcbench import weights as registry
from vcbench.errors import WeightsError

WEIGHTS_NAME = "instcolor_zip"
FOLDER = "coco_finetuned_mask_256_ffs"
MEMBERS = {"instance": "latest_net_G.pth", "fusion": "latest_net_GF.pth", "full": "latest_net_GComp.pth"}
HOW = ("download checkpoints.zip from https://drive.google.com/open?id=1Xb-DKAA9ibCVLqm8teKd1MWk6imjwTBh "
       "(ericsujw/InstColorization's README) and save it as $TORCH_HOME/hub/checkpoints/InstColorization_checkpoints.zip, "
       "or pass --model-option weights=PATH to the zip or to its extracted coco_finetuned_mask_256_ffs folder")


def _member_blobs_zip(path: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            out = {}
            for key, base in MEMBERS.items():
                hits = [n for n in names if n.replace("\\", "/").endswith(f"{FOLDER}/{base}")]
                if len(hits) != 1:
                    raise WeightsError(f"the zip holds {len(hits)} files {FOLDER}/{base} (expected one)", path=path,
                                       hint=HOW)
                out[key] = zf.read(hits[0])
            return out
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise WeightsError(f"not a readable zip archive ({exc})", path=path, hint=HOW) from exc


def _member_blobs_folder(path: Path) -> dict[str, bytes]:
    out = {}
    for key, base in MEMBERS.items():
        hits = [p for p in path.rglob(base) if p.is_file() and (p.parent.name == FOLDER or p.parent == path)]
        if len(hits) != 1:
            raise WeightsError(f"the folder holds {len(hits)} files {base} in {FOLDER}/ or at its top (expected one)",
                               path=path, hint=HOW)
        out[key] = hits[0].read_bytes()
    return out


def load_instcolor_files(path: str | Path | None, *, allow_unverified: bool = False,
                         quiet: bool = False) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, str], bool]:
    """({"instance"|"fusion"|"full": state dict}, {file: sha256}, verified)."""
    sha: dict[str, str] = {}
    verified = True
    if path is not None and Path(path).is_dir():
        source = Path(path)
        blobs = _member_blobs_folder(source)
    else:
        # Google Drive serves an HTML confirmation page, not the zip: never try to download.
        resolved = registry.resolve(WEIGHTS_NAME, path, download=False, allow_unverified=allow_unverified, quiet=quiet)
        source, verified = Path(resolved.path), resolved.verified
        sha[source.name] = resolved.sha256
        blobs = _member_blobs_zip(source)
    states = {}
    for key, data in blobs.items():
        sha[MEMBERS[key]] = hashlib.sha256(data).hexdigest()
        state = registry.load_state_dict(source / MEMBERS[key], data=data)
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise WeightsError(f"{MEMBERS[key]} is not a state dict of tensors", path=source, hint=HOW)
        states[key] = state
    return states, sha, verified
