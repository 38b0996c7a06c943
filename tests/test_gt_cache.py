"""GT cache writes under kills and failures: no `.part` left behind, none ever read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vcbench.metrics import gt_cache
from vcbench.metrics.gt_cache import PART_SUFFIX, GTCache

# A writer that streams half an entry and is then killed -9, as the OOM killer or a cluster does.
_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from vcbench.metrics import gt_cache
    if sys.argv[2] == "named":
        gt_cache._anonymous_file = lambda folder: None
    w = gt_cache.GTCache(sys.argv[1]).writer("flow", "k" * 40, (4, 3, 8, 8), np.float32)
    w.write(np.ones((2, 3, 8, 8), np.float32))
    sys.stdout.write("written\\n"); sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _kill_a_writer(root: Path, mode: str) -> None:
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(root), mode], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert proc.returncode == -signal.SIGKILL and "written" in proc.stdout, proc.stderr


def _parts(root: Path) -> list[Path]:
    return sorted(root.rglob(f"*{PART_SUFFIX}"))


@pytest.mark.skipif(getattr(os, "O_TMPFILE", None) is None, reason="needs Linux O_TMPFILE")
def test_killed_writer_leaves_nothing(tmp_path):
    _kill_a_writer(tmp_path, "anonymous")
    assert list((tmp_path / "flow").iterdir()) == []
    assert GTCache(tmp_path).load("flow", "k" * 40, 4) is None


def test_dead_writers_parts_are_removed_and_never_read(tmp_path):
    """Where entries have a temporary name while written (no O_TMPFILE, or a crash of an older
    version: a 0-byte `.part`), the next writer in the folder removes those whose writer is dead,
    and no reader takes one for an entry."""
    _kill_a_writer(tmp_path, "named")
    folder = tmp_path / "flow"
    stale = folder / f".{'s' * 40}.npy.x1y2{PART_SUFFIX}"
    stale.write_bytes(b"")  # what an older version left after a kill
    assert len(_parts(tmp_path)) == 2
    cache = GTCache(tmp_path)
    assert cache.load("flow", "k" * 40, 4) is None and cache.load("flow", "s" * 40) is None
    w = cache.writer("other", "a" * 40, (1, 2), np.float32)  # another kind's folder is not swept
    w.write(np.zeros((1, 2), np.float32))
    w.commit()
    assert len(_parts(tmp_path)) == 2
    w = cache.writer("flow", "b" * 40, (1, 2), np.float32)
    assert _parts(tmp_path) == []  # both dead writers' files are gone
    w.write(np.ones((1, 2), np.float32))
    w.commit()
    assert _parts(tmp_path) == []
    assert cache.load("flow", "b" * 40, 1).tolist() == [[1.0, 1.0]]


def test_a_live_writers_part_is_left_alone(tmp_path, monkeypatch):
    """Two scoring runs on one cache: the sweep of one never deletes the entry the other is writing."""
    monkeypatch.setattr(gt_cache, "_anonymous_file", lambda folder: None)
    live = GTCache(tmp_path).writer("flow", "c" * 40, (2, 2), np.float32)
    live.write(np.ones((1, 2), np.float32))
    assert len(_parts(tmp_path)) == 1
    GTCache(tmp_path).writer("flow", "d" * 40, (1, 2), np.float32).abort()
    assert len(_parts(tmp_path)) == 1  # still there: its writer holds the lock
    live.write(np.ones((1, 2), np.float32))
    live.commit()
    assert _parts(tmp_path) == [] and GTCache(tmp_path).load("flow", "c" * 40, 2) is not None


@pytest.mark.parametrize("mode", ["anonymous", "named"])
def test_failed_write_leaves_nothing(tmp_path, monkeypatch, mode):
    """A write that fails (full disk) removes its own file and says which entry, in one line."""
    from vcbench.errors import VcbenchError

    if mode == "named":
        monkeypatch.setattr(gt_cache, "_anonymous_file", lambda folder: None)
    w = GTCache(tmp_path).writer("flow", "e" * 40, (4, 2), np.float32)

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

    w._fh = Full(w._fh)
    with pytest.raises(VcbenchError, match="no space left"):
        w.write(np.ones((1, 2), np.float32))
    w.abort()
    assert _parts(tmp_path) == [] and list((tmp_path / "flow").iterdir()) == []


def test_clip_keys_come_from_file_digests(tmp_path):
    """The content key of a clip is built from its files' sha256 (`hashing.frames_digest` /
    `video_digest`), so `vcbench score` and `vcbench evaluate` (whose benchmark hashed the files for its
    checksum) key the same GT alike. Frames keys are the bytes they always were; a video's is the
    digest of its file's digest (plan decision 6: a one-time miss, never a stale hit)."""
    import hashlib
    import shutil

    from vcbench.frames import Clip, sample_videos, write_frames

    video = tmp_path / "carphone.mp4"
    shutil.copy(sample_videos()["carphone_pristine"], video)
    raw = hashlib.sha256(video.read_bytes()).digest()
    assert gt_cache.clip_digest(Clip("carphone", video, "video")) == hashlib.sha256(b"video\0" + raw).hexdigest()
    frames = Clip("carphone", video, "video").iter_frames()
    write_frames(tmp_path / "f" / "carphone", [next(frames) for _ in range(3)])
    clip = Clip("carphone", tmp_path / "f" / "carphone", "frames")
    want = hashlib.sha256(b"frames\0" + b"".join(hashlib.sha256(p.read_bytes()).digest()
                                                 for p in clip.frame_paths()))
    assert gt_cache.clip_digest(clip) == want.hexdigest()
