"""Class labels for same-class reference filtering (DEVC kept a clip's references to its ImageNet class).

Two user files, each a CSV or TSV of `name,class` rows (a header row `image|clip|id|name|file|path,
class|label` is skipped):
- `--gallery-labels`: gallery image -> class. An image is named by its id, file name, file stem,
  path relative to the gallery folder, or absolute path, whichever the file uses.
- `--clip-labels`: clip -> class, named by output clip id, cut clip id or source video id.
A clip without its own label takes its still's gallery label (pseudo-video from a labelled still),
else its class is voted by its unfiltered neighbours (`vcbench.retrieval.topk.vote_label`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from vcbench.errors import InputError
from vcbench.stills import Still


def still_keys(still: Still, folder: str | Path | None) -> list[str]:
    """The names a label file may use for a gallery image or still, most specific first."""
    keys = [still.origin]
    if not still.origin.startswith("skimage:"):
        p = Path(still.origin)
        if folder is not None:
            try:
                keys.append(p.relative_to(Path(folder).resolve()).as_posix())
            except ValueError:
                pass
        keys += [p.name, p.stem]
    keys.append(still.still_id)
    return keys


def lookup(labels: dict[str, str], keys: Sequence[str]) -> str | None:
    for k in keys:
        if k in labels:
            return labels[k]
    return None


def gallery_labels(stills: Sequence[Still], folder: str | Path | None, labels: dict[str, str],
                   path: str | Path) -> list[str]:
    """The class of every gallery image, in gallery order; every image must have one (an unlabelled
    image could never be filtered correctly)."""
    out, missing = [], []
    for s in stills:
        label = lookup(labels, still_keys(s, folder))
        if label is None:
            missing.append(s.still_id)
        out.append(label or "")
    if missing:
        raise InputError(f"{len(missing)} of {len(stills)} gallery images have no class in the gallery labels "
                         f"(e.g. {', '.join(missing[:3])})", path=path,
                         hint="label every gallery image (by id, file name, relative path or absolute path)")
    return out


def clip_label(entry: dict, clip_labels: dict[str, str] | None, still_labels: dict[str, str] | None,
               stills_folder: str | Path | None) -> str | None:
    """A planned clip's class: its own label (clip id, cut clip id, then source video id), else the
    gallery label of the still a pseudo-video came from, else None (voted at retrieval)."""
    if clip_labels:
        label = lookup(clip_labels, [entry["clip_id"], entry.get("base_clip") or "", entry["video_id"]])
        if label is not None:
            return label
    if still_labels and entry["kind"] == "pseudo":
        return lookup(still_labels, still_keys(Still(entry["video_id"], entry["origin"]), stills_folder))
    return None
