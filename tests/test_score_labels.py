"""Image sets and true labels: `vcbench score --images --labels FILE` gives top1/top5 accuracies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import degrade
from PIL import Image
from skimage import data

from vcbench.cli import main
from vcbench.errors import InputError
from vcbench.frames import ImageClip, list_clips
from vcbench.labels import read_class_labels

STILLS = {"ILSVRC2012_val_00000001": data.chelsea, "ILSVRC2012_val_00000002": data.coffee,
          "ILSVRC2012_val_00000003": data.astronaut, "ILSVRC2012_val_00000004": data.rocket}


@pytest.fixture
def image_sets(tmp_path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """(pred_dir, gt_dir, {name: pred image}): scikit-image stills at 96x128 and degraded copies."""
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    preds = {}
    for i, (name, load) in enumerate(STILLS.items()):
        img = np.asarray(Image.fromarray(load()).resize((128, 96), Image.BICUBIC))
        pred = degrade(img[None], "jpeg+chroma" if i % 2 else "blur+hue", seed=i)[0]
        Image.fromarray(img).save(gt_dir / f"{name}.png")
        Image.fromarray(pred).save(pred_dir / f"{name}.png")
        preds[name] = pred
    return pred_dir, gt_dir, preds


def _torchvision_topk(weights_home: Path, images: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """The five best classes of each image from a direct torchvision VGG19 forward (the reference)."""
    from torchvision.models import VGG19_Weights, vgg19

    net = vgg19(weights=None)
    net.load_state_dict(torch.load(weights_home / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth", weights_only=True))
    net.eval()
    tf = VGG19_Weights.IMAGENET1K_V1.transforms()
    with torch.no_grad():
        return {k: net(tf(torch.from_numpy(v).permute(2, 0, 1))[None])[0].topk(5).indices.tolist()
                for k, v in images.items()}


def test_list_clips_image_set(image_sets):
    pred_dir, gt_dir, _ = image_sets
    clips = list_clips(gt_dir, images=True)
    assert [c.name for c in clips] == list(STILLS)
    assert all(isinstance(c, ImageClip) and c.num_frames() == 1 for c in clips)
    with pytest.raises(InputError, match="--images"):  # without the flag, loose images stay an error
        list_clips(gt_dir)
    (gt_dir / "ILSVRC2012_val_00000001.jpg").write_bytes((gt_dir / "ILSVRC2012_val_00000001.png").read_bytes())
    with pytest.raises(InputError, match="two images named 'ILSVRC2012_val_00000001'"):
        list_clips(gt_dir, images=True)
    (pred_dir / "clipfolder").mkdir()
    with pytest.raises(InputError, match="only images"):
        list_clips(pred_dir, images=True)


def test_read_class_labels_formats(tmp_path):
    ctest = tmp_path / "ctest.txt"
    ctest.write_text("/n01440764/ILSVRC2012_val_00000293.JPEG 0\n\n/n04286575/ILSVRC2012_val_00042961.JPEG 818\n")
    assert read_class_labels(ctest) == {"ILSVRC2012_val_00000293": 0, "ILSVRC2012_val_00042961": 818}
    csv = tmp_path / "labels.csv"
    csv.write_text("# my set\nimage,class\nbear.v2,3\ncar.mp4,999\n")
    assert read_class_labels(csv) == {"bear.v2": 3, "car": 999}  # only media extensions are stripped
    for text, msg in [("a 1000\n", "outside ImageNet-1k"), ("a 1\nb x\n", "class 'x' of 'b' is not an integer"),
                      ("a 1\na 2\n", "labelled both 1 and 2"), ("justone\n", "not `name class`"), ("", "no labels")]:
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(InputError, match=msg):
            read_class_labels(bad)


def test_score_image_set_with_labels_is_accuracy(image_sets, weights_home, tmp_path, capsys):
    pred_dir, gt_dir, preds = image_sets
    best = _torchvision_topk(weights_home, preds)
    names = list(STILLS)
    # Labels chosen so that the accuracies are neither 0 nor 1: image 0 hits top-1, image 1 hits top-5
    # only (its 5th class), images 2 and 3 miss (a class outside their five).
    outside = lambda k: next(c for c in range(1000) if c not in best[k])  # noqa: E731
    labels = {names[0]: best[names[0]][0], names[1]: best[names[1]][4], names[2]: outside(names[2]),
              names[3]: outside(names[3])}
    lines = [f"/n00000000/{k}.JPEG {v}" for k, v in labels.items()]  # the ctest10k list's format
    (tmp_path / "labels.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "scores.json"
    cache = tmp_path / "cache"
    assert main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir), "--images", "--labels",
                 str(tmp_path / "labels.txt"), "--metrics", "top1,top5,psnr,warp_error", "--json", str(out),
                 "--cache-dir", str(cache), "--allow-unverified-weights", "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["n_clips"] == 4 and res["n_frames"] == 4
    assert res["metrics"]["top1"] == pytest.approx(1 / 4) and res["metrics"]["top5"] == pytest.approx(2 / 4)
    assert res["per_clip"][names[1]]["top1"] == 0.0 and res["per_clip"][names[1]]["top5"] == 1.0
    assert res["metrics"]["warp_error"] is None  # one-frame clips have no temporal pairs
    assert res["protocol"]["labels"]["n"] == 4 and len(res["protocol"]["labels"]["sha256"]) == 64
    # With true labels the GT's own top-1 (a VGG19 pass over every GT image) is neither computed nor cached.
    assert not list(cache.glob("vgg19_gt_top1/*"))


def test_score_without_labels_caches_the_gt_top1(image_sets, weights_home, tmp_path):
    pred_dir, gt_dir, _ = image_sets
    cache = tmp_path / "cache"
    assert main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir), "--images", "--metrics", "top1",
                 "--cache-dir", str(cache), "--allow-unverified-weights", "--quiet"]) == 0
    assert len(list(cache.glob("vgg19_gt_top1/*.npy"))) == 4  # one entry per GT image


def test_labels_missing_a_clip_or_file_is_one_line(image_sets, weights_home, tmp_path, capsys):
    pred_dir, gt_dir, _ = image_sets
    partial = tmp_path / "partial.txt"
    partial.write_text(f"{next(iter(STILLS))} 5\n")
    out = tmp_path / "scores.json"
    for labels, msg in [(partial, "3 clip(s) have no label"), (tmp_path / "nope.txt", "label file not found")]:
        assert main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir), "--images", "--labels", str(labels),
                     "--metrics", "top1", "--json", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err
        assert not out.exists()


def test_bundled_ctest10k_list_by_name(tmp_path, weights_home):
    """`--labels imagenet-ctest10k` reads the shipped list; images are paired to it by file stem."""
    from vcbench.benchmarks import imagenet_entries

    entries = imagenet_entries()[:2]
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    for (_, fname, _), load in zip(entries, (data.chelsea, data.coffee)):
        img = np.asarray(Image.fromarray(load()).resize((96, 72), Image.BICUBIC))
        Image.fromarray(img).save(gt_dir / fname, format="JPEG")
        Image.fromarray(degrade(img[None], "blur+hue")[0]).save(pred_dir / Path(fname).with_suffix(".png").name)
    preds = {Path(f).stem: np.array(Image.open(pred_dir / Path(f).with_suffix(".png").name)) for _, f, _ in entries}
    best = _torchvision_topk(weights_home, preds)
    want = np.mean([best[Path(f).stem][0] == label for _, f, label in entries])
    out = tmp_path / "s.json"
    assert main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir), "--images", "--labels", "imagenet-ctest10k",
                 "--metrics", "top1", "--json", str(out), "--allow-unverified-weights", "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["metrics"]["top1"] == pytest.approx(want) and res["protocol"]["labels"]["n"] == 10000
