"""The work of one class of a build-pairs shard: load -> gray descriptors -> same-class neighbours -> tiers.

Retrieval is vcbench.retrieval's (the descriptors the references use, a faiss flat index of the
class, on the GPU when there is one); this file only says which images are compared and how the
neighbours become DEVC's three pair lists.

Tiers (what `pairs.txt`, `pairs_mid.txt` and `pairs_bad.txt` hold). Every image queries the other
images of its class; its `top_k` nearest (cosine similarity of the gray-image descriptors, an
identical file excluded) are its neighbours, ranked 1..top_k. An unordered pair {a, b} counts once,
at the better of the two ranks (DEVC's loader reads each line both ways), and its score is the
cosine similarity, rounded to 6 decimals (symmetric: computed in float64 from the two vectors):
  good  rank <= good_ranks and score > 0   -> pairs.txt (DEVC uses a line when its score is > 0)
  mid   rank <= good_ranks + mid_ranks     -> pairs_mid.txt (read without a score test)
  bad   the other neighbours, and good-rank pairs whose score is not > 0 -> pairs_bad.txt
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vcbench.retrieval.index import GalleryIndex

TIERS = ("good", "mid", "bad")


@dataclass(frozen=True)
class Neighbour:
    image: int  # position in the class
    rank: int  # 1 = nearest
    score: float


def sample_view(still: np.ndarray, rng: np.random.Generator, long_side: int = 500) -> np.ndarray:
    """A crop of a still (45-90% of its area, aspect 3:4..4:3, flipped half the time) resized to an
    ImageNet-like size (long side 500): the offline classes are views of one photograph each."""
    import cv2

    h, w = still.shape[:2]
    area = rng.uniform(0.45, 0.9) * h * w
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    ch = int(min(h, round(np.sqrt(area / aspect))))
    cw = int(min(w, round(np.sqrt(area * aspect))))
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    crop = still[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    scale = long_side / max(ch, cw)
    size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(np.ascontiguousarray(crop), size, interpolation=interp))


def neighbours(feats: np.ndarray, ids: list[str], digests: list[str], top_k: int, descriptor: str,
               device: str = "cpu") -> list[list[Neighbour]]:
    """Per image, its `top_k` nearest other images of the class by the faiss index's inner product
    (descriptors are L2-normalised: cosine); images with identical bytes are not each other's."""
    n = len(ids)
    index = GalleryIndex.build(feats, ids, ids, descriptor=descriptor, kind="flat").to_device(device)
    same: dict[str, list[int]] = {}
    for i, d in enumerate(digests):
        same.setdefault(d, []).append(i)
    depth = min(n, top_k + max(len(v) for v in same.values()))
    res = index.search(feats, depth)
    f64 = feats.astype(np.float64)
    out = []
    for i in range(n):
        row = [int(j) for j in res.ids[i] if j >= 0 and digests[int(j)] != digests[i]][:top_k]
        out.append([Neighbour(j, r + 1, round(float(f64[i] @ f64[j]), 6)) for r, j in enumerate(row)])
    return out


def tier_pairs(nbrs: list[list[Neighbour]], ids: list[str], good_ranks: int, mid_ranks: int) -> list[dict]:
    """The class's pairs {a, b, tier, rank, score}, each unordered pair once at its better rank,
    sorted by tier, then rank, then names (a < b)."""
    best: dict[tuple[int, int], Neighbour] = {}
    for i, row in enumerate(nbrs):
        for nb in row:
            key = (min(i, nb.image), max(i, nb.image))
            if key not in best or nb.rank < best[key].rank:
                best[key] = nb
    pairs = []
    for (i, j), nb in best.items():
        a, b = sorted((ids[i], ids[j]))
        if nb.rank <= good_ranks and nb.score > 0:
            tier = "good"
        elif good_ranks < nb.rank <= good_ranks + mid_ranks:
            tier = "mid"
        else:
            tier = "bad"
        pairs.append({"a": a, "b": b, "tier": tier, "rank": nb.rank, "score": nb.score})
    pairs.sort(key=lambda p: (TIERS.index(p["tier"]), p["rank"], p["a"], p["b"]))
    return pairs
