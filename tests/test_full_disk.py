"""A full disk ends in one line naming the file being written, the bytes it needs and what to do, and
leaves nothing half-written under a final name (issue 10, point 4).

The disk is real: a small tmpfs mounted for the test (root only; the tests skip elsewhere), filled
as a user's disk fills, and the real `vcbench` commands run against it in a subprocess.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vcbench.atomic import DISK_FULL_HINT, atomic_path, atomic_write_bytes, write_bytes
from vcbench.errors import VcbenchError


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({proc.stderr.strip() or 'mount failed'}); needs root")


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB file system of its own at tmp_path/disk, unmounted afterwards."""
    if shutil.which("mount") is None or not sys.platform.startswith("linux"):
        pytest.skip("needs Linux mount(8) to create a small tmpfs")
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "1m")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave: int = 0) -> Path:
    """Fill `disk` until `leave` bytes are free (about: tmpfs counts 4 KiB pages)."""
    filler = disk / "filler.bin"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as fh:
        try:
            fh.write(b"\0" * max(free - leave, 0))
            fh.flush()
        except OSError:
            pass
    return filler


def _vcbench(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vcbench", *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=300)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("vcbench: error: ") and err.endswith(DISK_FULL_HINT + "."), err
    return err


def test_atomic_write_on_a_full_disk_names_the_file_and_the_bytes(small_disk):
    _fill(small_disk)
    target = small_disk / "out" / "data.bin"
    with pytest.raises(VcbenchError) as exc:
        atomic_write_bytes(target, b"x" * 300_000)
    msg = str(exc.value)
    assert msg.startswith(f"{target}: no space left on device while writing (needs 300000 bytes (293.0 KiB); ")
    assert "free there" in msg and msg.endswith("free space, then rerun the same command.")
    assert sorted(p.name for p in (small_disk / "out").iterdir()) == []  # no temporary file left


def test_numpy_short_write_is_reported_with_the_path(small_disk):
    """numpy's np.save reports a full disk as 'N requested and M written' with no errno and no path."""
    _fill(small_disk, leave=64 * 1024)
    arr = np.zeros((25, 216, 384, 3), np.uint8)
    target = small_disk / "clip.npy"
    with pytest.raises(VcbenchError) as exc:
        with atomic_path(target, suffix=".npy") as tmp:
            np.save(tmp, arr, allow_pickle=False)
    msg = str(exc.value)
    assert msg.startswith(f"{target}: no space left on device while writing (needs at least 6220800 bytes"), msg
    assert list(small_disk.glob("*.npy")) == []


def test_shard_file_on_a_full_disk_is_removed(small_disk):
    """Files inside a shard's temporary folder: the same line, and no partial file stays behind."""
    from vcbench.trainset.shards import ShardWriter

    writer = ShardWriter(small_disk / "build", 0)
    _fill(small_disk, leave=8 * 1024)
    data = os.urandom(200_000)
    with pytest.raises(VcbenchError, match=r"00000\.jpg: no space left on device while writing \(needs 200000 bytes"):
        writer._put("clip/frames/00000.jpg", data)
    assert not (writer.tmp / "clip" / "frames" / "00000.jpg").exists()
    path = small_disk / "plain.bin"
    with pytest.raises(VcbenchError, match="plain.bin: no space left"):
        write_bytes(path, data)
    assert not path.exists()


def test_score_json_on_a_full_disk(small_disk, gt_pred_dirs, tmp_path):
    pred, gt = gt_pred_dirs
    _fill(small_disk)
    out = small_disk / "results.json"
    proc = _vcbench(["score", "--pred", str(pred), "--gt", str(gt), "--metrics", "psnr", "--json", str(out),
                     "--quiet", "--no-cache"], tmp_path)
    err = _one_line(proc)
    assert f"{out}: " in err, err
    assert not out.exists() and sorted(p.name for p in small_disk.iterdir()) == ["filler.bin"]


def test_save_frames_on_a_full_disk(small_disk, tmp_path):
    """The disk fills part-way through a clip: no clip folder with some of its frames is left."""
    _fill(small_disk, leave=48 * 1024)
    frames = small_disk / "frames"
    proc = _vcbench(["evaluate", "--model", "gray", "--dataset", "sample", "--dataset-option", "frames=6",
                     "--metrics", "psnr", "--save-frames", str(frames), "--db", str(tmp_path / "r.sqlite"),
                     "--cache-dir", str(tmp_path / "cache"), "--quiet"], tmp_path)
    err = _one_line(proc)
    assert re.search(re.escape(str(frames)) + r"/gray/\.\w+\.\w+\.tmp/\d{5}\.png: no space left on device while writing "
                     r"\(needs \d+ bytes",
                     err), err
    left = sorted(p.relative_to(frames).as_posix() for p in frames.rglob("*")) if frames.exists() else []
    # Only complete clips may stay (each renamed into place whole); no temporary folder, no partial clip.
    for clip in {"/".join(p.split("/")[:2]) for p in left if p.count("/") >= 1}:
        assert not clip.split("/")[1].startswith("."), left
        assert len(list((frames / clip).iterdir())) == 6, left


def test_build_dataset_on_a_full_disk_then_resumes(small_disk, tmp_path):
    """Today's failure was 'vcbench: error: vcbench: 6220800 requested and 343936 written' (no path).
    After freeing space, the same command finishes and the build verifies."""
    out = small_disk / "build"
    cmd = ["build-dataset", "--source", "sample", "--out", str(out), "--clips", "2", "--workers", "1",
           "--flow", "none", "--features", "none", "--quiet"]
    err = _one_line(_vcbench(cmd, tmp_path))
    assert re.search(r"/work/extract/\.bigbuckbunny\.([\w-]+\.)?tmp/bigbuckbunny_s000_c000\.npy: no space left on device "
                     r"while writing \(needs 6220928 bytes \(5\.9 MiB\); \d+ bytes .* free there\)", err), err
    assert list(out.rglob("*.npy")) == [] and not (out / "work" / "extract" / "bigbuckbunny").exists()
    # The user frees space (here: the file system grows), then reruns the same command.
    subprocess.run(["mount", "-o", "remount,size=160m", str(small_disk)], check=True)
    done = _vcbench(cmd, tmp_path)
    assert done.returncode == 0, done.stderr
    verify = _vcbench(["datasets", "verify", str(out)], tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_cli_last_resort_for_a_full_disk(monkeypatch, capsys):
    """A full disk that no module turned into a VcbenchError still gives the hint and the file."""
    import errno

    from vcbench.cli import main, models_cmd

    def full(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/out.bin")

    monkeypatch.setattr(models_cmd, "run_list", full, raising=False)
    assert main(["models", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vcbench: error: /data/out.bin: no space left on device while writing")
    assert err.endswith(DISK_FULL_HINT + ".") and len(err.splitlines()) == 1


def test_archive_larger_than_the_free_space_is_refused_before_extracting(small_disk, tmp_path):
    import zipfile

    from vcbench.download import safe_extract

    with zipfile.ZipFile(tmp_path / "videos.zip", "w") as zf:
        zf.writestr("clip.mp4", os.urandom(2 << 20))
    dest = small_disk / "root"
    with pytest.raises(VcbenchError) as exc:
        safe_extract(tmp_path / "videos.zip", dest)
    assert str(exc.value).startswith(f"{dest}: no space left on device while writing (needs 2097152 bytes")
    assert str(exc.value).endswith(DISK_FULL_HINT + ".") and list(dest.iterdir()) == []


def test_gallery_index_on_a_full_disk(small_disk):
    """faiss reports a short write as RuntimeError; it is the same line, and no partial index stays."""
    from vcbench.retrieval.index import GalleryIndex

    feats = np.random.default_rng(0).normal(size=(2000, 128)).astype(np.float32)
    index = GalleryIndex.build(feats, [f"img{i}" for i in range(2000)], descriptor="test", kind="flat")
    _fill(small_disk, leave=256 * 1024)
    with pytest.raises(VcbenchError) as exc:
        index.save(small_disk / "gallery")
    msg = str(exc.value)
    assert msg.startswith(f"{small_disk / 'gallery' / 'index.faiss'}: no space left on device while writing "
                          "(needs more than the "), msg
    assert msg.endswith(DISK_FULL_HINT + ".")
    assert list((small_disk / "gallery").iterdir()) == []


def test_devc_export_on_a_full_disk(small_disk, tmp_path):
    """The build is on a roomy disk, the DEVC export goes to a full one: the file and bytes are named."""
    cmd = ["build-dataset", "--source", "sample", "--out", str(tmp_path / "build"), "--clips", "2", "--workers", "1",
           "--flow", "dis", "--features", "weightfree", "--quiet"]
    assert _vcbench(cmd, tmp_path).returncode == 0
    _fill(small_disk, leave=64 * 1024)
    export = small_disk / "devc"
    err = _one_line(_vcbench(cmd + ["--export-devc", str(export)], tmp_path))
    assert re.search(re.escape(str(export)) + r"/\S+: no space left on device while writing \(needs \d+ bytes", err), err
