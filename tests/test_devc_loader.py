"""DEVC's training data path on vcbench's output, as its train.py `load_data()` builds it: the video set
(`--data_root`, lib/videoloader.py) and the ImageNet pair set (`--data_root_imagenet`,
lib/videoloader_imagenet.py), concatenated, every item read.

The official code is not a dependency; this follows the rules read from it:
- video set: every sub-folder of the root is a clip and must hold `pairs_output_new.txt`; a line
  splits on whitespace into 12 names, each cut at its first '.'; then input_pad/<img>.jpg,
  reference_gt/<gt>.jpg, reference/<ref>.JPEG, flow/<img1>_forward.flo / _backward.flo,
  mask/<img1>_mask.pgm (>= 240 is valid) are opened with PIL / Middlebury's reader; frames are centre
  cropped to 216x384 (torchvision CenterCrop), references "CenterPad"-ed to it, flow and mask centre
  cropped as numpy arrays (so they must be at least 216x384 themselves);
- pair set: every sub-folder is a class and must hold `pairs.txt`; a line splits on single spaces,
  names unpack as `name, ext = token.split(".")` (exactly one dot); a pairs.txt line counts when
  float(score) > 0, every pairs_mid.txt / pairs_bad.txt line counts (with_mid/with_bad are always
  true: argparse's type=bool); each pair is used both ways; images are read from input/, input_mid/
  or input_bad/ by tier, converted to RGB and "CenterPad_threshold"-ed to 216x384;
- train.py's --image_size cannot be changed from the command line (type=int with a list default),
  so 216x384 it is.
The official loaders catch every exception of an item and silently read a random other one; here
any failure fails the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vcbench.trainset.clips import ClipSpec
from vcbench.trainset.pairs import PairConfig, build_pairs
from vcbench.trainset.config import BuildConfig, RunOptions
from vcbench.trainset.run import build_dataset
from vcbench.frames import sample_videos

SIZE = (216, 384)


# ------------------------------------------------------------------------ the rules, as read
def parse_video_root(root: Path) -> list[tuple]:
    items = []
    for sub in sorted(os.listdir(root)):
        path = root / sub
        if not path.is_dir():
            continue
        listing = path / "pairs_output_new.txt"
        if not listing.exists():
            raise RuntimeError(f"clip folder without pairs_output_new.txt: {path}")
        for line in listing.read_text().splitlines(keepends=True):
            cols = line.replace("\n", "").split()
            img1, img2, refvid, _refvid1, r1, r2, r3, r4, r5, g1, g2, g3 = cols  # exactly 12
            cut = [c.split(".")[0] for c in (img1, img2, refvid, r1, r2, r3, r4, r5, g1, g2, g3)]
            i1, i2, rv, *refs_gts = cut
            refs, gts = refs_gts[:5], refs_gts[5:]
            items.append((path, i1 + ".jpg", i2 + ".jpg", [r + ".JPEG" for r in refs], i1 + "_forward.flo",
                          i1 + "_backward.flo", i1 + "_mask.pgm", [g + ".jpg" for g in gts]))
    return items


def parse_pair_root(root: Path, with_mid: bool = True, with_bad: bool = True) -> list[tuple]:
    items = []
    for target in sorted(os.listdir(root)):
        d = root / target
        if not d.is_dir():
            continue
        if not (d / "pairs.txt").exists():
            raise RuntimeError(f"class folder without pairs.txt: {d}")
        for list_name, tier, use in (("pairs.txt", 2, True), ("pairs_mid.txt", 0, with_mid), ("pairs_bad.txt", -1, with_bad)):
            if not use or not (d / list_name).exists():
                continue
            for line in (d / list_name).read_text().splitlines(keepends=True):
                pair = line.strip().split(" ")
                name0, _ext0 = pair[0].split(".")
                name1, _ext1 = pair[1].split(".")
                if tier == 2 and not float(pair[2]) > 0:
                    continue
                items += [(d, name0, name1, tier), (d, name1, name0, tier)]
    return items


def read_middlebury(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        assert np.fromfile(f, np.float32, count=1)[0] == 202021.25
        w = int(np.fromfile(f, np.int32, count=1)[0])
        h = int(np.fromfile(f, np.int32, count=1)[0])
        data = np.fromfile(f, np.float32, count=2 * w * h)
    assert data.size == 2 * w * h  # the official reader would silently np.resize a short file
    return data.reshape(h, w, 2)


def centre_crop(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    top, left = (h - SIZE[0]) // 2, (w - SIZE[1]) // 2
    assert top >= 0 and left >= 0, f"{a.shape} is smaller than {SIZE}: the batch could not be collated"
    return a[top:top + SIZE[0], left:left + SIZE[1]]


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    return resize(img, shape, mode="reflect", preserve_range=True, clip=False, anti_aliasing=True)


def center_pad_threshold(img: np.ndarray, threshold: float = 3 / 4) -> np.ndarray:
    """DEVC's CenterPad_threshold to 216x384: near-square images are cropped to 4:3 then resized;
    others resized to fill and centre cropped."""
    h0, w0 = img.shape[:2]
    if h0 / w0 != SIZE[0] / SIZE[1] and h0 / w0 > threshold:
        hn = int(w0 * threshold)
        return _resize(img[(h0 - hn) // 2:(h0 - hn) // 2 + hn], list(SIZE))
    return center_pad(img)


def read_video_item(item) -> dict:
    from skimage.color import rgb2lab
    from torchvision.transforms import CenterCrop

    path, i1, i2, refs, fw, bw, mask, gts = item
    out = {}
    crop = CenterCrop(SIZE)
    for key, name in (("I1", i1), ("I2", i2)):
        with Image.open(path / "input_pad" / name) as im:
            out[key] = rgb2lab(np.asarray(crop(im)))
    for name in gts:
        with Image.open(path / "reference_gt" / name) as im:
            out.setdefault("gt", []).append(rgb2lab(center_pad(np.asarray(im))))
    for name in refs:
        with Image.open(path / "reference" / name) as im:
            out.setdefault("refs", []).append(rgb2lab(center_pad(np.asarray(im))))
    out["fw"] = centre_crop(read_middlebury(path / "flow" / fw))
    out["bw"] = centre_crop(read_middlebury(path / "flow" / bw))
    with Image.open(path / "mask" / mask) as im:
        m = np.array(im)
    out["mask"] = centre_crop((m >= 240).astype(np.uint8))
    return out


def center_pad(img: np.ndarray) -> np.ndarray:
    """The video loader's CenterPad: resize to fill 216x384, centre crop (no 4:3 threshold)."""
    h0, w0 = img.shape[:2]
    if h0 / w0 == SIZE[0] / SIZE[1]:
        return img if h0 == SIZE[0] else _resize(img, [int(x * SIZE[0] / h0) for x in (h0, w0)])
    if h0 / w0 > SIZE[0] / SIZE[1]:
        r = _resize(img, [int(x * SIZE[1] / w0) for x in (h0, w0)])
        return r[(r.shape[0] - SIZE[0]) // 2:(r.shape[0] - SIZE[0]) // 2 + SIZE[0]]
    r = _resize(img, [int(x * SIZE[0] / h0) for x in (h0, w0)])
    return r[:, (r.shape[1] - SIZE[1]) // 2:(r.shape[1] - SIZE[1]) // 2 + SIZE[1]]


def read_pair_item(item) -> dict:
    from skimage.color import rgb2lab

    d, a, b, tier = item
    folder = {2: "input", 0: "input_mid", -1: "input_bad"}[tier]
    out = {}
    for key, name in (("a", a), ("b", b)):
        with open(d / folder / f"{name}.JPEG", "rb") as f, Image.open(f) as im:
            out[key] = rgb2lab(center_pad_threshold(np.asarray(im.convert("RGB"))).astype(np.uint8))
    return out


# ------------------------------------------------------------------------------------- the test
@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    from vcbench.trainset.export_devc import export_devc
    from vcbench.trainset.export_pairs import export_pairs

    base = tmp_path_factory.mktemp("devc")
    videos = base / "videos"
    videos.mkdir()
    os.symlink(sample_videos()["bikes"], videos / "bikes.mp4")
    clips = base / "clips"
    build_dataset(BuildConfig(source="local", input=str(videos), clips=3, seed=1, spec=ClipSpec(length=3, height=216, width=384),
                              flow="dis", features="weightfree", pseudo_fraction=0.34, shard_size=2),
                  clips, RunOptions(workers=1, quiet=True))
    pairs = base / "pairs"
    build_pairs(PairConfig(source="sample", views=4, top_k=3), pairs, RunOptions(workers=1, quiet=True, device="cpu"))
    export_devc(clips, base / "data_root", quiet=True)
    export_pairs(pairs, base / "data_root_imagenet", quiet=True)
    return clips, pairs, base / "data_root", base / "data_root_imagenet"


def test_load_data_reads_every_item_of_both_sets(exports):
    import pandas as pd

    from vcbench.trainset.shards import clip_flow_files, read_stored_flow

    clips, pairs, data_root, data_root_imagenet = exports
    video_items = parse_video_root(data_root)
    pair_items = parse_pair_root(data_root_imagenet)
    manifest = pd.read_parquet(clips / "manifest.parquet")
    assert len(video_items) == int((manifest["num_frames"] - 1).sum()) == 6
    tiers = pd.read_parquet(pairs / "pairs.parquet")["tier"].value_counts()
    assert len(pair_items) == 2 * int(tiers.sum())  # every good pair has a score > 0, so nothing is dropped
    assert {t for *_, t in pair_items} >= {2, 0}  # good and mid tiers at least, from their own folders
    concat = video_items + pair_items  # train.py's ConcatDataset (epoch 1)
    assert len(concat) == len(video_items) + len(pair_items)
    by_clip = {row.clip_id: row for row in manifest.itertuples(index=False)}
    for item in video_items:
        got = read_video_item(item)
        assert got["I1"].shape == got["I2"].shape == (*SIZE, 3)
        assert len(got["gt"]) == 3 and len(got["refs"]) == 5 and all(r.shape == (*SIZE, 3) for r in got["refs"] + got["gt"])
        assert got["fw"].shape == got["bw"].shape == (*SIZE, 2) and got["mask"].shape == SIZE
        assert 0.3 < got["mask"].mean() <= 1.0
        t = int(item[1].split(".")[0])  # the forward flow is the build's, to the PNG grid
        row = by_clip[item[0].name]
        stored = read_stored_flow(clips, clip_flow_files(json.loads(row.flow_files), "fw")[t])
        np.testing.assert_array_equal(got["fw"], stored)
    # The build's stats state what the export writes per clip (float32 .flo and PGM masks), exactly.
    from vcbench.trainset.export_devc import export_bytes_per_clip

    est = export_bytes_per_clip(*SIZE, 3)
    written = sum(p.stat().st_size for p in data_root.rglob("*") if p.suffix in (".flo", ".pgm"))
    assert written == len(manifest) * est["total"]
    assert json.loads((clips / "stats.json").read_text())["devc_export_bytes_per_clip"]["total"] == est["total"]
    for item in pair_items:
        got = read_pair_item(item)
        assert got["a"].shape == got["b"].shape == (*SIZE, 3)
        assert item[1] != item[2]
