"""The build-dataset pipeline end to end on a real video (tiny sizes): byte-identical reruns,
resume after SIGKILL, verify catching corrupt and missing files, the DEVC export's layout and
pairs file as DEVC's loader parses it."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vcbench.trainset.clips import ClipSpec
from vcbench.trainset.config import BuildConfig, RunOptions
from vcbench.trainset.run import build_dataset
from vcbench.errors import InputError
from vcbench.frames import sample_videos


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("videos")
    shutil.copyfile(sample_videos()["carphone_pristine"], d / "carphone.mp4")
    return d


def tiny_config(videos: Path, **kw) -> BuildConfig:
    base = dict(source="local", clips=8, seed=3, spec=ClipSpec(length=5, height=48, width=96, max_clips_per_shot=2), flow="dis",
                features="weightfree", pseudo_fraction=0.25, shard_size=2, input=str(videos))
    base.update(kw)
    return BuildConfig(**base)


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file of a build; stats files compared without their timings."""
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(root))
        if p.name.endswith("stats.json"):
            data = json.loads(p.read_text())
            data.pop("timings", None)
            out[rel] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def clean_build(videos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "build"
    build_dataset(tiny_config(videos), out, RunOptions(workers=1, quiet=True))
    return out


@pytest.fixture
def cli(monkeypatch):
    """`vcbench.cli.main` with only the commands under test registered (independent of the others)."""
    import vcbench.cli as cli_mod

    monkeypatch.setattr(cli_mod, "COMMAND_MODULES", ("datasets_cmd", "build_dataset"))
    return cli_mod.main


def test_build_contents_and_manifest(clean_build):
    df = pd.read_parquet(clean_build / "manifest.parquet")
    assert len(df) == 8 and df["clip_id"].is_unique
    assert list(df["kind"]).count("pseudo") == 2
    assert set(df["shard"]) == {0, 1, 2, 3}
    row = df.iloc[0]
    assert row.num_frames == 5 and (row.height, row.width) == (48, 96)
    assert row.source == "local" and row.licence and row.origin.startswith("file://")
    files = json.loads(row.files)
    assert len(files) == 5 and all((clean_build / f).is_file() for f in files)
    flow_files = json.loads(row.flow_files)
    from vcbench.trainset.shards import clip_flow_files, clip_mask_files, read_stored_flow

    fw = np.stack([read_stored_flow(clean_build, f) for f in clip_flow_files(flow_files, "fw")])
    assert fw.dtype == np.float32 and fw.shape == (4, 48, 96, 2)
    assert len(clip_flow_files(flow_files, "bw")) == len(clip_mask_files(flow_files)) == 4
    refs = json.loads(row.references)
    assert len(refs) == 5 and refs == sorted(refs, key=lambda r: -r["score"])
    aug = json.loads(df[df.variant > 0].iloc[0].augmentation)
    assert aug["kind"] == "video-augment" and "crop" in aug
    cands = pd.read_parquet(clean_build / "candidates.parquet")
    assert len(cands) == 2 and list(cands["start_frame"]) == [0, 5]
    stats = json.loads((clean_build / "shards" / "shard-00000.stats.json").read_text())
    assert stats["count"] == 2 and stats["failed"] == 0 and set(stats["timings"]) >= {"augment", "flow", "references", "write"}
    assert not (clean_build / "work").exists()


def test_same_command_gives_identical_bytes(clean_build, videos, tmp_path):
    out = tmp_path / "again"
    build_dataset(tiny_config(videos), out, RunOptions(workers=1, quiet=True))
    assert digests(out) == digests(clean_build)


def test_other_seed_changes_augmented_clips_only(clean_build, videos, tmp_path):
    out = tmp_path / "seed4"
    build_dataset(tiny_config(videos, seed=4), out, RunOptions(workers=1, quiet=True))
    a = pd.read_parquet(clean_build / "manifest.parquet").set_index("clip_id")
    b = pd.read_parquet(out / "manifest.parquet").set_index("clip_id")
    assert set(a.index) == set(b.index)
    b = b.loc[a.index]
    orig = a.variant.eq(0) & a.kind.eq("video")
    assert (a.augmentation[orig] == b.augmentation[orig]).all()
    assert (a.augmentation[~orig] != b.augmentation[~orig]).all()


def test_rerun_with_other_settings_is_refused(clean_build, videos):
    with pytest.raises(InputError, match="other settings"):
        build_dataset(tiny_config(videos, seed=99), clean_build, RunOptions(workers=1, quiet=True))


def test_folder_without_readable_build_json_refuses_other_settings(videos, tmp_path, cli, capsys):
    """build.json lost or torn: the build ids in plan.json, the shard stats and the manifest still say
    which build the shards are, so other settings are refused (never relabelled) and the same
    settings resume; a folder whose output records no build at all is refused."""
    cfg = tiny_config(videos, clips=2, flow="none", features="none", pseudo_fraction=0.0, shard_size=1)
    out = tmp_path / "id"
    build_dataset(cfg, out, RunOptions(workers=1, quiet=True))
    before = digests(out)
    for damage in ("missing", "unreadable"):
        if damage == "missing":
            (out / "build.json").unlink()
        else:
            (out / "build.json").write_text('{"source": "local", "cl')
        with pytest.raises(InputError, match=f"build.json is {damage} and .* other settings"):
            build_dataset(tiny_config(videos, clips=2, flow="none", features="none", pseudo_fraction=0.0,
                                      shard_size=1, seed=4), out, RunOptions(workers=1, quiet=True))
        rc = cli(["build-dataset", "--source", "local", "--input", str(videos), "--out", str(out), "--clips", "3",
                  "--quiet", "--workers", "1"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and f"build.json is {damage}" in err, err
        build_dataset(cfg, out, RunOptions(workers=1, quiet=True))  # the same settings: resumed as it was
        assert digests(out) == before
    # Output whose records name no build (e.g. made before build ids existed) cannot be matched.
    (out / "build.json").unlink()
    (out / "manifest.parquet").unlink()
    plan = json.loads((out / "plan.json").read_text())
    del plan["build_id"]
    (out / "plan.json").write_text(json.dumps(plan))
    for stats in (out / "shards").glob("*.stats.json"):
        rec = json.loads(stats.read_text())
        del rec["build_id"]
        stats.write_text(json.dumps(rec))
    with pytest.raises(InputError, match="build.json is missing and nothing else here records which settings"):
        build_dataset(cfg, out, RunOptions(workers=1, quiet=True))


_CHILD = """
import sys
from vcbench.trainset.clips import ClipSpec
from vcbench.trainset.config import BuildConfig, RunOptions
from vcbench.trainset.run import build_dataset
cfg = BuildConfig(source="local", clips=8, seed=3, spec=ClipSpec(length=5, height=48, width=96, max_clips_per_shot=2), flow="dis",
                  features="weightfree", pseudo_fraction=0.25, shard_size=2, input=sys.argv[2])
build_dataset(cfg, sys.argv[1], RunOptions(workers=1, quiet=True))
"""


def test_resume_after_sigkill_matches_clean_build(clean_build, videos, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(out), str(videos)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    shards = out / "shards"
    deadline = time.monotonic() + 120
    killed_mid_shard = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (shards / "shard-00000.stats.json").is_file() and any(shards.glob(".shard-*.tmp")):
                proc.send_signal(signal.SIGKILL)
                killed_mid_shard = True
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None and not killed_mid_shard:
            proc.kill()
        proc.wait()
    assert killed_mid_shard, "the build finished before it could be killed"
    assert not (out / "manifest.parquet").exists()
    assert any(shards.glob(".shard-*.tmp"))  # the partial shard is still on disk before the rerun
    build_dataset(tiny_config(videos), out, RunOptions(workers=1, quiet=True))
    assert not list(shards.glob(".*"))
    assert digests(out) == digests(clean_build)
    df = pd.read_parquet(out / "manifest.parquet")
    assert df["clip_id"].is_unique and len(df) == 8


def test_rerun_of_complete_build_changes_nothing(clean_build, videos, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(clean_build, out)
    before = digests(out)
    build_dataset(tiny_config(videos), out, RunOptions(workers=1, quiet=True))
    assert digests(out) == before


def test_verify_finds_corrupt_and_missing_files(clean_build, tmp_path, cli):
    main = cli
    out = tmp_path / "v"
    shutil.copytree(clean_build, out)
    assert main(["datasets", "verify", str(out)]) == 0
    df = pd.read_parquet(out / "manifest.parquet")
    frame = sorted(json.loads(df.iloc[1].files))[2]
    flow = next(f for f in json.loads(df.iloc[3].flow_files) if "/flow_bw/" in f)
    data = bytearray((out / frame).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / frame).write_bytes(bytes(data))
    (out / flow).unlink()
    from vcbench.trainset.verify import verify_build

    rep = verify_build(out)
    assert rep.corrupt == [frame] and rep.missing == [flow] and not rep.ok
    assert main(["datasets", "verify", str(out)]) != 0
    shutil.rmtree(out / "shards" / "shard-00002")
    assert "shards/shard-00002/" in verify_build(out).missing
    with pytest.raises(InputError):
        verify_build(tmp_path)


def test_devc_export_layout_and_pairs_columns(clean_build, tmp_path):
    """Parse the export as DEVC's lib/videoloader.py does: 12 columns, names cut at '.', then
    .jpg/.JPEG/.flo/.pgm appended; every file it would open must exist and decode."""
    import cv2

    from vcbench.trainset.export_devc import export_devc
    from vcbench.trainset.shards import clip_flow_files, read_stored_flow
    from vcbench.flow.flo import read_flo

    dest = tmp_path / "devc"
    res = export_devc(clean_build, dest, quiet=True)
    assert res["clips"] == 8 and res["written"] == 8
    df = pd.read_parquet(clean_build / "manifest.parquet")
    for row in df.itertuples(index=False):
        clip = dest / row.clip_id
        lines = (clip / "pairs_output_new.txt").read_text().splitlines()
        assert len(lines) == row.num_frames - 1
        refs = [r["id"] for r in json.loads(row.references)]
        fw_store = [read_stored_flow(clean_build, f) for f in clip_flow_files(json.loads(row.flow_files), "fw")]
        for t, line in enumerate(lines):
            cols = line.split()
            assert len(cols) == 12
            img1, img2, refvid, refvid1, *rest = [c.split(".")[0] for c in cols]
            ref5, refgt = rest[:5], rest[5:]
            assert (img1, img2) == (f"{t:05d}", f"{t + 1:05d}")
            assert ref5 == refs
            for name in (img1, img2):
                assert cv2.imread(str(clip / "input_pad" / f"{name}.jpg")).shape == (48, 96, 3)
            for name in ref5:
                assert cv2.imread(str(clip / "reference" / f"{name}.JPEG")) is not None
            for name in refgt:
                assert (clip / "reference_gt" / f"{name}.jpg").is_file()
            fw = read_flo(clip / "flow" / f"{img1}_forward.flo")
            assert fw.shape == (48, 96, 2)
            np.testing.assert_array_equal(fw, fw_store[t])
            assert read_flo(clip / "flow" / f"{img1}_backward.flo").shape == (48, 96, 2)
            mask = cv2.imread(str(clip / "mask" / f"{img1}_mask.pgm"), cv2.IMREAD_UNCHANGED)
            assert mask.shape == (48, 96) and set(np.unique(mask)) <= {0, 255}
        frames = sorted(json.loads(row.files))
        if row.frame_format == "jpg":  # frames are copied, not re-encoded
            assert (clip / "input_pad" / "00003.jpg").read_bytes() == (clean_build / frames[3]).read_bytes()
    again = export_devc(clean_build, dest, quiet=True)
    assert again["written"] == 0


_KILLED_EXPORT = """
import os, signal, sys
from vcbench.trainset import export_devc as ex
real, calls = ex._write_clip, []
def dying(root, row, tmp, *a):
    calls.append(row.clip_id)
    if len(calls) == 3:  # part-way through the third clip: killed as the OOM killer would
        (tmp / "input_pad").mkdir(parents=True)
        os.kill(os.getpid(), signal.SIGKILL)
    real(root, row, tmp, *a)
ex._write_clip = dying
ex.export_devc(sys.argv[1], sys.argv[2], quiet=True)
"""


def test_devc_export_never_mixes_two_builds_and_resumes_after_a_kill(clean_build, videos, tmp_path, cli, capsys):
    """The export records its build (vcbench-export.json): another build's export into the same folder
    is refused (by build-dataset --export-devc before it builds), as is a folder of clip folders that
    no export recorded; an export killed part-way resumes to the bytes of an uninterrupted one."""
    from vcbench.trainset.export_devc import export_devc
    from vcbench.trainset.layout import MARKER

    dest = tmp_path / "devc"
    export_devc(clean_build, dest, quiet=True)
    full = digests(dest)
    assert json.loads((dest / MARKER).read_text())["clips"] == 8 and not list(dest.glob(".*"))
    other = tmp_path / "other"
    other_args = ["--source", "local", "--input", str(videos), "--clips", "2", "--seed", "5", "--pseudo-fraction", "0",
                  "--clip-length", "5", "--size", "48x96", "--shard-size", "2", "--workers", "1", "--quiet"]
    assert cli(["build-dataset", "--out", str(other), *other_args]) == 0
    with pytest.raises(InputError, match="holds the DEVC export of another build"):
        export_devc(other, dest, quiet=True)
    capsys.readouterr()
    rc = cli(["build-dataset", "--out", str(tmp_path / "third"), *other_args, "--seed", "6", "--export-devc", str(dest)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "DEVC export of another build" in err, err
    assert not (tmp_path / "third").exists()  # refused before any work
    assert digests(dest) == full  # neither attempt touched the export
    # Clip folders with no record of their build (an older export, another tool's) are not mixed in.
    foreign = tmp_path / "foreign"
    shutil.copytree(dest / next(p.name for p in dest.iterdir() if p.is_dir()), foreign / "someclip")
    with pytest.raises(InputError, match="holds folders but no vcbench-export.json"):
        export_devc(clean_build, foreign, quiet=True)
    # Killed part-way: two clips done, a third half-written in its private folder, then a rerun.
    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", _KILLED_EXPORT, str(clean_build), str(killed)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert len([p for p in killed.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 2
    assert any(p.name.endswith(".tmp") for p in killed.iterdir())  # the dead writer's folder
    assert export_devc(clean_build, killed, quiet=True)["written"] == 6
    assert digests(killed) == full and not list(killed.glob(".*"))


def test_export_refuses_build_without_flow(videos, tmp_path):
    from vcbench.trainset.export_devc import export_devc

    out = tmp_path / "noflow"
    build_dataset(tiny_config(videos, flow="none", features="none", clips=2, pseudo_fraction=0.0), out,
                  RunOptions(workers=1, quiet=True))
    assert json.loads(pd.read_parquet(out / "manifest.parquet").iloc[0].flow_files) == {}
    with pytest.raises(InputError, match="no flow"):
        export_devc(out, tmp_path / "x", quiet=True)


def test_cli_sample_build_is_offline_and_small(tmp_path, cli):
    """The documented command on the bundled videos, reduced to a few clips: exit 0, verify passes."""
    main = cli
    out = tmp_path / "s"
    rc = main(["build-dataset", "--source", "sample", "--out", str(out), "--clips", "3", "--size", "32x64",
               "--clip-length", "4", "--workers", "1", "--quiet", "--flow", "farneback"])
    assert rc == 0
    assert main(["datasets", "verify", str(out)]) == 0
    df = pd.read_parquet(out / "manifest.parquet")
    assert len(df) == 3 and set(df["source"]) <= {"sample", "stills"}
    assert main(["build-dataset", "--source", "local", "--out", str(tmp_path / "z")]) == 2  # no --input


def test_undecodable_video_is_logged_and_skipped(videos, tmp_path):
    src = tmp_path / "in"
    shutil.copytree(videos, src)
    (src / "broken.mp4").write_bytes((videos / "carphone.mp4").read_bytes()[:2000])
    out = tmp_path / "b"
    totals = build_dataset(tiny_config(src, flow="none", features="none", clips=2, pseudo_fraction=0.0), out,
                           RunOptions(workers=1, quiet=True))
    fails = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [(f["item"], f["stage"]) for f in fails] == [("broken", "extract")]
    assert "broken.mp4" in fails[0]["reason"]
    assert totals["clips"] == 2 and totals["videos"] == 2


def test_flow_stage_is_the_scorers_flow_and_mask(videos):
    """Batched forward/backward flow and the mask equal vcbench.flow's estimator and Lai's test
    called pair by pair (one implementation of flow, warp and occlusion)."""
    import torch

    from vcbench.trainset.clips import resize_fill
    from vcbench.trainset.stages import FlowStage
    from vcbench.flow.registry import get_estimator
    from vcbench.flow.occlusion import occlusion_mask
    from vcbench.frames import Clip

    frames = []
    for i, f in enumerate(Clip("c", videos / "carphone.mp4", "video").iter_frames()):
        if i == 6:
            break
        frames.append(resize_fill(f, 48, 96))
    frames = np.stack(frames)
    res = FlowStage("dis", "cpu", batch=2)(frames)
    assert res.forward.shape == res.backward.shape == (5, 48, 96, 2) and res.valid.shape == (5, 48, 96)
    est = get_estimator("dis", "cpu")
    t = torch.from_numpy(frames.transpose(0, 3, 1, 2).copy())
    for k in (0, 3):
        fw = est(t[k:k + 1], t[k + 1:k + 2])
        bw = est(t[k + 1:k + 2], t[k:k + 1])
        np.testing.assert_array_equal(res.forward[k], fw[0].permute(1, 2, 0).numpy())
        np.testing.assert_array_equal(res.backward[k], bw[0].permute(1, 2, 0).numpy())
        np.testing.assert_array_equal(res.valid[k], occlusion_mask(fw, bw)[0, 0].numpy() == 0)
    assert 0.5 < res.valid.mean() < 1.0  # a real clip: mostly visible, some occlusion/boundaries


# ------------------------------------------------------------------ a source with nothing usable
def test_source_without_usable_clips_fails_instead_of_building_stills(videos, tmp_path):
    """A source whose only video is undecodable must not silently become --clips pseudo-clips
    (70,000 by default): one InputError naming the source and the failure, no plan or shard written."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "broken.mp4").write_bytes((videos / "carphone.mp4").read_bytes()[:2000])
    out = tmp_path / "b"
    with pytest.raises(InputError) as exc:
        build_dataset(tiny_config(src, clips=6, flow="none", features="none"), out, RunOptions(workers=1, quiet=True))
    msg = str(exc.value)
    assert "\n" not in msg and "'local'" in msg and "broken" in msg and str(out / "failures.jsonl") in msg
    assert not (out / "plan.json").exists() and not (out / "shards").exists() and not (out / "manifest.parquet").exists()
    fails = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["item"] for f in fails] == ["broken"]
    # Stills only, asked for explicitly, still works from the same source.
    totals = build_dataset(tiny_config(src, clips=2, flow="none", features="none", pseudo_fraction=1.0), tmp_path / "p",
                           RunOptions(workers=1, quiet=True))
    assert totals["clips"] == 2 and totals["accepted"] == 0


def test_offline_hollywood2_without_input_exits_nonzero_with_the_failure(tmp_path, cli, monkeypatch, capsys):
    monkeypatch.setenv("VCBENCH_OFFLINE", "1")
    out = tmp_path / "h"
    rc = cli(["build-dataset", "--source", "hollywood2", "--out", str(out), "--quiet", "--workers", "1", "--clips", "4",
              "--size", "32x64", "--clip-length", "3"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "'hollywood2' produced no videos" in err and "Hollywood2-actions.tar.gz" in err and "failures.jsonl" in err
    assert sorted(p.name for p in out.iterdir()) == ["failures.jsonl"]


# ------------------------------------------------------------------------------------ weights
RAFT_FILE = "raft_large_C_T_SKHT_V2-ff5fadd5.pth"


def _random_raft(path: Path, seed: int) -> str:
    """A random-init RAFT-large state dict where the resolver looks; its sha256 cannot match the registry's."""
    from vcbench.random_weights import write_random_weights

    assert write_random_weights(path.parent, ["raft_large"], seed)["raft_large"] == path
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_flow_weights_fail_before_the_source_is_touched(videos, tmp_path, torch_home, cli, capsys):
    out = tmp_path / "r"
    t0 = time.perf_counter()
    rc = cli(["build-dataset", "--source", "local", "--input", str(videos), "--out", str(out), "--flow", "raft",
              "--quiet", "--workers", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and RAFT_FILE in err and "vcbench weights download" in err
    assert not out.exists()  # no download, extraction or settings file before the weights check
    assert time.perf_counter() - t0 < 10


def test_unverified_weights_need_the_flag_and_are_recorded(videos, tmp_path, torch_home):
    from vcbench.trainset.manifest import read_build_metadata
    from vcbench.errors import WeightsError

    digest = _random_raft(torch_home / "hub" / "checkpoints" / RAFT_FILE, seed=0)
    cfg = tiny_config(videos, flow="raft", features="none", clips=2, pseudo_fraction=0.0, shard_size=1,
                      spec=ClipSpec(length=2, height=64, width=128, max_clips_per_shot=1))
    out = tmp_path / "u"
    with pytest.raises(WeightsError, match="allow-unverified-weights"):
        build_dataset(cfg, out, RunOptions(workers=1, quiet=True))
    assert not out.exists()
    totals = build_dataset(cfg, out, RunOptions(workers=1, quiet=True, allow_unverified=True))
    want = {"weights": {RAFT_FILE: digest}, "unverified_weights": True}
    build = json.loads((out / "build.json").read_text())
    assert {k: build[k] for k in want} == want and build["flow"] == "raft"
    for i in range(2):
        stats = json.loads((out / "shards" / f"shard-{i:05d}.stats.json").read_text())
        assert {k: stats[k] for k in want} == want and stats["successes"] == 1
    meta = read_build_metadata(out / "manifest.parquet")
    assert {k: meta[k] for k in want} == want and meta["flow"] == "raft"
    assert {k: totals[k] for k in want} == want
    # The same files again resume (nothing to redo); other files are another dataset.
    before = digests(out)
    build_dataset(cfg, out, RunOptions(workers=1, quiet=True, allow_unverified=True))
    assert digests(out) == before
    _random_raft(torch_home / "hub" / "checkpoints" / RAFT_FILE, seed=1)
    with pytest.raises(InputError, match="other weight files"):
        build_dataset(cfg, out, RunOptions(workers=1, quiet=True, allow_unverified=True))


def test_allow_unverified_flag_is_not_part_of_the_datasets_identity(clean_build, tmp_path):
    """A build with no weights (DIS, weight-free descriptor) records none, is verified, and resumes
    unchanged whether or not --allow-unverified-weights is given; other flow settings are refused."""
    build = json.loads((clean_build / "build.json").read_text())
    assert build["weights"] == {} and build["unverified_weights"] is False
    out = tmp_path / "copy"
    shutil.copytree(clean_build, out)
    before = digests(out)
    cfg = json.loads((out / "build.json").read_text())
    videos = Path(cfg["input"])
    build_dataset(tiny_config(videos), out, RunOptions(workers=1, quiet=True, allow_unverified=True))
    assert digests(out) == before
    with pytest.raises(InputError, match="other settings"):
        build_dataset(tiny_config(videos, flow="farneback"), out, RunOptions(workers=1, quiet=True, allow_unverified=True))


# ------------------------------------------------------------------- gallery classes and index kind
def _refs(out: Path) -> dict[str, list[dict]]:
    df = pd.read_parquet(out / "manifest.parquet")
    return {c: json.loads(r) for c, r in zip(df["clip_id"], df["references"])}


def test_ivf_index_through_the_pipeline(clean_build, videos, tmp_path, cli):
    """--index ivf with nprobe = nlist probes every list: the same references as the flat index of
    the clean build; the settings are recorded and another index is another dataset."""
    assert json.loads((clean_build / "stats.json").read_text())["index"]["kind"] == "flat"  # auto, 5 stills
    out = tmp_path / "ivf"
    build_dataset(tiny_config(videos, flow="none", index="ivf", nlist=2, nprobe=2), out, RunOptions(workers=1, quiet=True))
    build = json.loads((out / "build.json").read_text())
    assert (build["index"], build["nlist"], build["nprobe"]) == ("ivf", 2, 2)
    assert json.loads((out / "stats.json").read_text())["index"] == {"kind": "ivf", "nlist": 2, "nprobe": 2, "count": 5,
                                                                     "descriptor": "weightfree"}
    flat, ivf = _refs(clean_build), _refs(out)
    assert flat.keys() == ivf.keys() and all(len(r) == 5 for r in flat.values())
    for clip in flat:
        assert [r["id"] for r in ivf[clip]] == [r["id"] for r in flat[clip]]
        np.testing.assert_allclose([r["score"] for r in ivf[clip]], [r["score"] for r in flat[clip]], atol=2e-6)
    with pytest.raises(InputError, match="other settings"):
        build_dataset(tiny_config(videos, flow="none", index="ivf", nlist=2, nprobe=1), out, RunOptions(workers=1, quiet=True))
    with pytest.raises(InputError, match="IVF index only"):
        build_dataset(tiny_config(videos, index="flat", nlist=4), tmp_path / "bad", RunOptions(workers=1, quiet=True))
    rc = cli(["build-dataset", "--source", "local", "--input", str(videos), "--out", str(tmp_path / "c"), "--index", "ivf",
              "--nlist", "9", "--clips", "1", "--pseudo-fraction", "0", "--flow", "none", "--size", "32x64",
              "--clip-length", "3", "--workers", "1", "--quiet"])
    assert rc == 2 and not (tmp_path / "c").exists()  # 9 lists over 5 gallery images: refused before any work


def test_same_class_references_through_the_pipeline(clean_build, videos, tmp_path):
    """With gallery classes, every clip's references are its class's images, in the unfiltered order
    with the same scores: the carphone video's clips are labelled "b" (--clip-labels), a pseudo-video
    takes its still's class."""
    classes = {"astronaut": "a", "chelsea": "a", "coffee": "a", "rocket": "b", "motorcycle_left": "b"}
    glab = tmp_path / "gallery.tsv"
    glab.write_text("image\tclass\n" + "".join(f"{k}\t{v}\n" for k, v in classes.items()))
    clab = tmp_path / "clips.csv"
    clab.write_text("carphone,b\n")
    out = tmp_path / "lab"
    build_dataset(tiny_config(videos, flow="none", gallery_labels=str(glab), clip_labels=str(clab)), out,
                  RunOptions(workers=1, quiet=True))
    base, lab = _refs(clean_build), _refs(out)
    plan = {e["clip_id"]: e for e in json.loads((out / "plan.json").read_text())["clips"]}
    assert base.keys() == lab.keys()
    kinds = set()
    for clip, refs in lab.items():
        e = plan[clip]
        want_class = "b" if e["kind"] == "video" else classes[e["video_id"]]
        assert e["clip_label"] == want_class
        kinds.add(e["kind"])
        expect = [dict(r, **{"class": want_class}) for r in base[clip] if classes[r["id"]] == want_class]
        assert refs == expect and len(refs) == list(classes.values()).count(want_class)
    assert kinds == {"video", "pseudo"}
    clab.write_text("carphone,a\n")  # other classes under the same file name: another dataset
    with pytest.raises(InputError, match="other settings"):
        build_dataset(tiny_config(videos, flow="none", gallery_labels=str(glab), clip_labels=str(clab)), out,
                      RunOptions(workers=1, quiet=True))
    # An unlabelled gallery image is refused before any video is touched.
    glab.write_text("astronaut,a\nchelsea,a\n")
    with pytest.raises(InputError, match="3 of 5 gallery images have no class"):
        build_dataset(tiny_config(videos, flow="none", gallery_labels=str(glab)), tmp_path / "l2",
                      RunOptions(workers=1, quiet=True))
    assert not (tmp_path / "l2").exists()


def test_build_identity_and_worker_tasks_keep_their_bytes(videos, tmp_path):
    """A folder built before the pipeline's split resumes after it: build.json's record and build_id
    are the bytes they were (the id below is what the one-module pipeline gave for this record), and
    the worker tasks travel to forkserver/Ray workers by their new modules' paths."""
    import pickle

    from vcbench.trainset.config import WeightsRecord, build_id, build_record
    from vcbench.trainset.extract import ExtractTask, run_extract
    from vcbench.trainset.sources.base import SourceVideo
    from vcbench.trainset.stages import ShardTask, run_shard

    weights = WeightsRecord((("raft_large_C_T_SKHT_V2-ff5fadd5.pth", "ab" * 32),), True)
    assert build_id(build_record(BuildConfig(source="sample", clips=24), weights)) == "0c17388a69e697a2"
    cfg = tiny_config(videos)
    video = SourceVideo("carphone", videos / "carphone.mp4", "local", "unknown", "file://carphone.mp4")
    for fn, task in ((run_extract, ExtractTask(str(tmp_path), video, cfg.spec, "token")),
                     (run_shard, ShardTask(str(tmp_path), 0, ({"clip_id": "c"},), cfg, weights, False, "token", "id"))):
        blob = pickle.dumps((fn, task))
        assert pickle.loads(blob) == (fn, task)
        assert fn.__module__.encode() in blob and b"pipeline" not in blob


def test_stage_weights_and_gpu_come_from_the_registries():
    """Which weight files a build resolves and whether its shard tasks ask for a GPU are the flow
    estimators' and descriptors' own facts (ESTIMATORS, DESCRIPTORS specs): the same answers as the
    table the build kept before (raft/flownet2 and vgg19 load weights and want a GPU)."""
    from vcbench.trainset.pairs import PairConfig
    from vcbench.trainset.stages import stage_needs_gpu, stage_weight_names

    want = {("dis", "weightfree"): ([], False), ("farneback", "none"): ([], False), ("none", "weightfree_gray"): ([], False),
            ("raft", "weightfree"): (["raft_large"], True), ("flownet2", "none"): (["flownet2_things"], True),
            ("dis", "vgg19"): (["vgg19"], True), ("raft", "vgg19"): (["raft_large", "vgg19"], True)}
    for (flow, features), (weights, gpu) in want.items():
        cfg = BuildConfig(source="sample", clips=1, flow=flow, features=features)
        assert (stage_weight_names(cfg), stage_needs_gpu(cfg)) == (weights, gpu), (flow, features)
    assert stage_weight_names(PairConfig(features="vgg19")) == ["vgg19"]
    assert stage_weight_names(PairConfig()) == [] and not stage_needs_gpu(PairConfig())
