"""`imagenet-ctest10k`: the 10,000 ImageNet validation images of Larsson et al. 2016's ctest10k list,
with their class labels (for top1/top5 and FID); each image is a one-frame clip.

The images are never shipped (ImageNet needs registration); the list is (vcbench/data/). The list
with its labels enters the checksum as one extra `labels<TAB><sha256 of the list>` line.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

from vcbench import paths
from vcbench.benchmarks.base import Benchmark, BenchmarkSet, find_exemplars, hashed_benchmark, read_list
from vcbench.errors import InputError
from vcbench.frames import Clip, ImageClip
from vcbench.options import option

IMAGENET_ENV = "VCBENCH_IMAGENET_VAL"


def imagenet_entries() -> list[tuple[str, str, int]]:
    """(synset, file name, label) for the 10,000 ctest10k images, in list order."""
    out = []
    for line in read_list("imagenet_ctest10k.txt"):
        rel, label = line.rsplit(maxsplit=1)
        synset, fname = rel.strip("/").split("/")
        out.append((synset, fname, int(label)))
    return out


def val_root(data_root: str | Path | None) -> Path:
    """The ImageNet validation folder: the argument, $VCBENCH_IMAGENET_VAL, else `<data root>/imagenet/val`."""
    if data_root is not None:
        return Path(data_root)
    env = os.environ.get(IMAGENET_ENV)
    return Path(env) if env else paths.data_dir() / "imagenet" / "val"


class ImageNetSet(BenchmarkSet):
    """`imagenet-ctest10k`: option limit (the first N images of the list)."""

    def load(self, reference: str, exemplars: str | Path | None, *, data_root: str | Path | None,
             cache_dir: str | Path | None, options: Mapping[str, Any]) -> Benchmark:
        unknown_opts = set(options) - {"limit"}
        if unknown_opts:
            raise InputError(f"unknown option(s) for {self.name}: {', '.join(sorted(unknown_opts))}; valid: limit")
        root = val_root(data_root)
        entries = imagenet_entries()
        limit = option(options, "limit", int | None, None, flag="--dataset-option")
        if limit is not None:
            entries = entries[:limit]
        how = (f"Download the ILSVRC2012 validation images from https://image-net.org (registration needed), "
               f"then pass --data-root VAL_DIR (or set {IMAGENET_ENV}=VAL_DIR); VAL_DIR holds either "
               "<synset>/ILSVRC2012_val_XXXXXXXX.JPEG (class folders) or the 50,000 files flat")
        if not root.is_dir():
            raise InputError(f"{self.name}: ImageNet validation folder not found at {root}", hint=how)
        clips: list[Clip] = []
        labels: dict[str, int] = {}
        missing: list[str] = []
        for synset, fname, label in entries:
            p = root / synset / fname
            if not p.is_file():
                p = root / fname
            if not p.is_file():
                missing.append(f"{synset}/{fname}")
                continue
            name = Path(fname).stem
            clips.append(ImageClip(name, p))
            labels[name] = label
        if missing:
            raise InputError(f"{self.name}: {len(missing)} of {len(entries)} images are missing under {root} "
                             f"(first: {missing[0]})", hint=how)
        ex = find_exemplars(exemplars, clips) if reference == "exemplar" and exemplars is not None else {}
        if reference == "exemplar" and not ex:
            raise InputError(f"exemplar mode on {self.name} needs --exemplars DIR (one image per image id)")
        list_digest = hashlib.sha256("\n".join(f"{s}/{f} {lab}" for s, f, lab in entries).encode()).hexdigest()
        protocol = {"dataset": self.name, "reference_mode": reference, "images": len(clips), "limit": limit,
                    "labels": "ILSVRC2012 class index (0..999) from the ctest10k list", "source": self.source}
        if reference == "first-frame":
            protocol["note"] = "first-frame mode on images gives each model the GT image itself as reference (an oracle)"
        return hashed_benchmark(self.name, clips, reference, protocol, exemplars=ex, labels=labels, root=root,
                                extra=[f"labels\t{list_digest}"])

    def status(self, data_root: str | Path | None) -> tuple[bool, str]:
        root = val_root(data_root)
        if not root.is_dir():
            return False, f"ImageNet val folder not found at {root}; pass --data-root VAL_DIR or set {IMAGENET_ENV}"
        return True, str(root)

    def options_from_protocol(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        return {"limit": protocol["limit"]} if protocol.get("limit") is not None else {}


IMAGENET_CTEST10K = ImageNetSet(
    "imagenet-ctest10k", description="ImageNet val ctest10k (Larsson et al. 2016): 10,000 images with labels, "
    "for top1/top5 and FID", kind="image", source="ImageNet ILSVRC2012 validation set (image-net.org, registration)")
