"""Top-k reference images for a clip, from its key frames.

Each key frame queries the gallery; a gallery image scores the best similarity any key frame gives
it ("max", so a reference that matches the clip's start or its end both count), or the clip queries
once with the mean of its key-frame descriptors ("mean"). With gallery labels (ImageNet classes) the
references can be kept to the clip's class, as DEVC's training set does: the class is given, or
voted by the unfiltered neighbours weighted by their scores.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np

from vcbench.errors import InputError
from vcbench.retrieval.descriptors import Descriptor, get_descriptor
from vcbench.retrieval.index import GalleryIndex, normalize

Reference = tuple[str, float]


def key_frame_indices(n: int, count: int = 3) -> list[int]:
    """`count` frames spread evenly from first to last (first, middle, last for 3)."""
    if n <= 0:
        return []
    if count <= 1:
        return [n // 2]
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})


def _aggregate_max(scores: np.ndarray, ids: np.ndarray) -> dict[int, float]:
    best: dict[int, float] = {}
    for row_s, row_i in zip(scores, ids):
        for s, i in zip(row_s.tolist(), row_i.tolist()):
            if i >= 0 and (i not in best or s > best[i]):
                best[i] = s
    return best


def vote_label(candidates: dict[int, float], labels: Sequence[str], k: int) -> str:
    """The label with the largest summed score among the `k` best candidates (ties: smallest label)."""
    top = sorted(candidates.items(), key=lambda t: (-t[1], t[0]))[:k]
    votes: dict[str, float] = defaultdict(float)
    for i, s in top:
        votes[str(labels[i])] += s
    return min(votes, key=lambda lab: (-votes[lab], lab))


def top_k_for_clip(key_frames: np.ndarray | Sequence[np.ndarray], index: GalleryIndex, descriptor: Descriptor,
                   k: int = 5, *, labels: Sequence[str] | None = None, clip_label: str | None = None,
                   how: str = "max") -> list[Reference]:
    """The k best gallery (id, score) pairs for one clip's key frames, best first, ties by id.

    With `labels` (one per gallery image) only gallery images of the clip's class are returned;
    the class is `clip_label` or, if None, voted by the unfiltered top-k.
    """
    if how not in ("max", "mean"):
        raise ValueError("how must be 'max' or 'mean'")
    feats = descriptor(key_frames)
    queries = normalize(feats.mean(axis=0, keepdims=True)) if how == "mean" else feats
    n = index.ntotal
    depth = min(n, k if labels is None else max(4 * k, 32))
    while True:
        res = index.search(queries, depth)
        cand = _aggregate_max(res.scores, res.ids)
        if labels is None:
            chosen = cand
            break
        if clip_label is None:
            clip_label = vote_label(cand, labels, k)
        chosen = {i: s for i, s in cand.items() if str(labels[i]) == str(clip_label)}
        # Search deeper until the k best of the class are certain: an image no query has returned
        # yet scores at most the largest of the queries' last returned scores.
        bound = float(res.scores[:, -1].max())
        kth = sorted(chosen.values(), reverse=True)[k - 1] if len(chosen) >= k else -np.inf
        if kth >= bound or depth >= n:
            break
        depth = min(n, depth * 4)
    ranked = sorted(chosen.items(), key=lambda t: (-t[1], index.ids[t[0]]))[:k]
    return [(index.ids[i], float(s)) for i, s in ranked]


def retrieve_references(frames_by_clip: Mapping[str, np.ndarray | Sequence[np.ndarray]], index: GalleryIndex,
                        k: int = 5, *, descriptor: Descriptor | None = None, key_frames: int = 3,
                        labels: Sequence[str] | None = None, clip_labels: Mapping[str, str] | None = None,
                        how: str = "max", device: str = "cpu") -> dict[str, list[Reference]]:
    """{clip: [(gallery_id, score), ...k]} for clips given as frame stacks (N, H, W, 3) uint8.

    Up to `key_frames` frames per clip (first, middle, last) query the index; `descriptor` defaults
    to the one the index was built with.
    """
    descriptor = descriptor or get_descriptor(index.descriptor, device=device)
    if index.descriptor and descriptor.name != index.descriptor:
        raise InputError(f"descriptor {descriptor.name!r} does not match the index's {index.descriptor!r}",
                         hint="query with the descriptor the index was built with")
    out: dict[str, list[Reference]] = {}
    for clip, frames in frames_by_clip.items():
        frames = list(frames) if not isinstance(frames, np.ndarray) else frames
        keys = [frames[i] for i in key_frame_indices(len(frames), key_frames)]
        out[clip] = top_k_for_clip(keys, index, descriptor, k, labels=labels,
                                   clip_label=(clip_labels or {}).get(clip), how=how)
    return out
