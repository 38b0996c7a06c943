"""build-pairs: DEVC's ImageNet pair set from class folders, by vcbench's retrieval; determinism,
tiers and scores, verify, resume after a kill, the lock, and the one-build-per-export rule."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vcbench.trainset.pairs import PairConfig, build_pairs
from vcbench.trainset.config import RunOptions
from vcbench.errors import InputError, VcbenchError

from test_dataset_pipeline import digests

OPTS = RunOptions(workers=1, quiet=True, device="cpu")


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "b"
    build_pairs(PairConfig(source="sample", views=6, top_k=4), out, OPTS)
    return out


@pytest.fixture
def cli(monkeypatch):
    import vcbench.cli as cli_mod

    monkeypatch.setattr(cli_mod, "COMMAND_MODULES", ("datasets_cmd", "build_pairs", "build_dataset"))
    return cli_mod.main


def test_tiers_scores_and_neighbours_follow_the_documented_rules(sample_build):
    """Scores are the cosine of the gray-image descriptors (checked by brute force), neighbours stay
    in their class, every unordered pair is listed once at its better rank, and good pairs have a
    score > 0 as written (DEVC drops a pairs.txt line whose score is not > 0)."""
    from vcbench.frames import read_image
    from vcbench.retrieval.descriptors import get_descriptor
    from vcbench.retrieval.index import brute_force

    images = pd.read_parquet(sample_build / "manifest.parquet")
    pairs = pd.read_parquet(sample_build / "pairs.parquet")
    assert len(images) == 30 and images.groupby("class").size().tolist() == [6] * 5
    desc = get_descriptor("weightfree_gray")
    for cls, rows in images.groupby("class"):
        ids = list(rows["image_id"])
        feats = desc([read_image(sample_build / f) for f in rows["file"]])
        exact = brute_force(feats, feats, 5)
        for i, row in enumerate(rows.itertuples(index=False)):
            nb = json.loads(row.neighbours)
            assert [n[1] for n in nb] == [1, 2, 3, 4]
            assert [n[0] for n in nb] == [ids[j] for j in exact.ids[i] if j != i][:4]
            for other, _, score in nb:
                assert score == pytest.approx(float(feats[i] @ feats[ids.index(other)]), abs=2e-6)
        cp = pairs[pairs["class"] == cls]
        keys = list(zip(cp["a"], cp["b"]))
        assert len(keys) == len(set(keys)) and all(a < b for a, b in keys)
        assert set(cp["a"]) | set(cp["b"]) <= set(ids)
        best = {}
        for row in rows.itertuples(index=False):
            for other, rank, _ in json.loads(row.neighbours):
                k = tuple(sorted((row.image_id, other)))
                best[k] = min(best.get(k, 99), rank)
        assert set(keys) == set(best)
        for p in cp.itertuples(index=False):
            assert p.rank == best[(p.a, p.b)]
            want = "good" if p.rank <= 2 and p.score > 0 else "mid" if p.rank <= 4 else "bad"
            assert p.tier == want
    assert (pairs["tier"] == "good").sum() >= 5 and (pairs.loc[pairs["tier"] == "good", "score"] > 0).all()
    stats = json.loads((sample_build / "stats.json").read_text())
    assert stats["pairs"] == pairs["tier"].value_counts().reindex(["good", "mid", "bad"], fill_value=0).to_dict()
    assert stats["bytes_per_image"]["images"] > 0 and stats["projection"]["images"] == 1_281_167


def test_rerun_is_byte_identical_and_verify_catches_changes(sample_build, tmp_path, cli):
    again = tmp_path / "again"
    assert cli(["build-pairs", "--source", "sample", "--views", "6", "--top-k", "4", "--out", str(again),
                "--workers", "1", "--device", "cpu", "--quiet"]) == 0
    assert digests(again) == digests(sample_build)
    assert cli(["datasets", "verify", str(again)]) == 0
    stored = sorted((again / "shards" / "shard-00001" / "images").iterdir())[0]
    stored.write_bytes(stored.read_bytes()[:-10])
    from vcbench.trainset.verify import verify_build

    rep = verify_build(again)
    assert rep.corrupt == [str(stored.relative_to(again))] and not rep.ok
    # Other settings into the same folder are refused, as build-dataset refuses them.
    with pytest.raises(InputError, match="other settings"):
        build_pairs(PairConfig(source="sample", views=6, top_k=3), again, OPTS)


def _class_folder(tmp_path: Path) -> Path:
    """Two classes of real photographs (crops of two stills, JPEG and PNG) plus an unreadable file."""
    import cv2

    from vcbench.stills import load_skimage_still

    root = tmp_path / "train"
    for cls, still in (("n02123045", "chelsea"), ("n03063599", "coffee")):
        (root / cls).mkdir(parents=True)
        img = load_skimage_still(still)
        for j in range(4):
            crop = np.ascontiguousarray(img[j * 10:img.shape[0] - 20 + j * 5, j * 15:img.shape[1] - 30 + j * 7])
            ext = "png" if j == 3 else "JPEG"
            cv2.imwrite(str(root / cls / f"{cls}_{j}.{ext}"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    (root / "n03063599" / "n03063599_9.JPEG").write_bytes(b"not a jpeg")
    return root


def test_imagenet_folder_links_sources_and_records_failures(tmp_path, cli):
    root = _class_folder(tmp_path)
    out, dest = tmp_path / "b", tmp_path / "devc"
    assert cli(["build-pairs", "--source", "imagenet", "--input", str(tmp_path), "--out", str(out), "--top-k", "3",
                "--workers", "1", "--device", "cpu", "--quiet", "--export-devc", str(dest)]) == 0  # finds train/
    images = pd.read_parquet(out / "manifest.parquet")
    assert len(images) == 8 and (images["file"] == "").all()  # sources are not copied
    stats = json.loads((out / "shards" / "shard-00001.stats.json").read_text())
    assert stats["failed"] == 1 and "n03063599_9" in stats["failures"][0]["image_id"]
    pairs = pd.read_parquet(out / "pairs.parquet")
    for p in pairs.itertuples(index=False):
        assert p.a.split("_")[0] == p.b.split("_")[0] == p._0  # same class only
    cls = dest / "n02123045"
    good = (cls / "pairs.txt").read_text().splitlines()
    assert good and all(len(line.split(" ")) == 3 for line in good)
    a = good[0].split(" ")[0]
    src = root / "n02123045" / a
    if src.is_file():  # a JPEG source is hard-linked, not copied
        assert os.path.samefile(src, cls / "input" / a)
    png_ids = [i for i in images["image_id"] if i.endswith("_3")]
    for line in (cls / "pairs.txt").read_text().splitlines() + (cls / "pairs_mid.txt").read_text().splitlines():
        for name in line.split(" ")[:2]:
            if name.split(".")[0] in png_ids:  # re-encoded: a real JPEG under the .JPEG name
                folder = "input" if line in good else "input_mid"
                assert (cls / folder / name).read_bytes()[:2] == b"\xff\xd8"
    # A changed source image is what verify reports (the export links it).
    victim = root / "n02123045" / "n02123045_1.JPEG"
    victim.write_bytes(victim.read_bytes()[:-100])
    from vcbench.trainset.verify import verify_build

    assert str(victim.resolve()) in verify_build(out).corrupt
    # Not an ImageNet folder: one line.
    (root / "cats").mkdir()
    with pytest.raises(InputError, match="not an ImageNet train folder"):
        build_pairs(PairConfig(source="imagenet", input=str(root)), tmp_path / "x", OPTS)


_KILLED = """
import os, signal, sys
from vcbench.trainset import pairs as P
from vcbench.trainset.config import RunOptions
real, calls = P.run_pair_shard, []
def dying(task):
    calls.append(task.index)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # the main process (workers=1 runs shards in it), mid-build
    return real(task)
P.run_pair_shard = dying
P.build_pairs(P.PairConfig(source="sample", views=6, top_k=4), sys.argv[1], RunOptions(workers=1, quiet=True, device="cpu"))
"""


def test_killed_build_resumes_to_the_same_bytes_and_a_second_build_is_refused(sample_build, tmp_path):
    from vcbench.lock import FolderLock

    out = tmp_path / "k"
    proc = subprocess.run([sys.executable, "-c", _KILLED, str(out)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-500:]
    assert len(list((out / "shards").glob("shard-*.stats.json"))) == 2
    with FolderLock(out, "build"):  # another build holds the folder: refused in one line
        with pytest.raises(VcbenchError, match="another vcbench build is writing to this folder"):
            build_pairs(PairConfig(source="sample", views=6, top_k=4), out, OPTS)
    build_pairs(PairConfig(source="sample", views=6, top_k=4), out, OPTS)
    assert digests(out) == digests(sample_build)


def test_pair_export_never_mixes_builds(sample_build, tmp_path, cli, capsys):
    from vcbench.trainset.layout import MARKER
    from vcbench.trainset.export_pairs import export_pairs

    dest = tmp_path / "devc"
    assert cli(["datasets", "export", "--format", "devc", str(sample_build), str(dest), "--quiet", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["classes"] == 5 and res["written"] == 5 and json.loads((dest / MARKER).read_text())["kind"] == "pairs"
    assert export_pairs(sample_build, dest, quiet=True)["written"] == 0  # resumed: nothing to do
    other = tmp_path / "other"
    build_pairs(PairConfig(source="sample", views=4, seed=1), other, OPTS)
    capsys.readouterr()
    assert cli(["datasets", "export", str(other), str(dest), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "DEVC export of another build" in err
    assert cli(["build-pairs", "--source", "sample", "--views", "4", "--seed", "2", "--out", str(tmp_path / "third"),
                "--export-devc", str(dest), "--quiet"]) == 2
    assert not (tmp_path / "third").exists()  # refused before any work
    foreign = tmp_path / "foreign"
    (foreign / "someclass").mkdir(parents=True)
    with pytest.raises(InputError, match="no vcbench-export.json"):
        export_pairs(sample_build, foreign, quiet=True)


def test_cli_start_imports_neither_pyarrow_nor_torch(tmp_path):
    """`vcbench --help` builds every command's parser; build-pairs' choices come from a module of their
    own, so starting the CLI does not pay for the builder's pyarrow, OpenCV and torch (issue 11)."""
    code = ("import sys; from vcbench.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print(sorted(m for m in ('pyarrow', 'torch', 'cv2') if m in sys.modules), file=sys.stderr)")
    env = {"TORCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "build-pairs" in res.stdout
    assert eval(res.stderr.strip().splitlines()[-1]) == []
