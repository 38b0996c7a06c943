"""Image frames decode on a thread pool a bounded window ahead, with the sequential loop's results."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

import vcbench.frames as frames
from vcbench.errors import InputError
from vcbench.frames import Clip, write_frames


@pytest.fixture
def clip12(tmp_path, sample_frames):
    f = sample_frames["bigbuckbunny"]
    seq = np.concatenate([f, f[::-1]])[:12]
    write_frames(tmp_path / "c", seq)
    return Clip("c", tmp_path / "c", "frames"), seq


def test_frames_decode_on_pool_threads_in_order(clip12, monkeypatch):
    clip, seq = clip12
    monkeypatch.setattr(frames, "decode_threads", lambda: 2)
    real, threads = frames.read_image, set()

    def spy(p):
        threads.add(threading.current_thread().name)
        return real(p)

    monkeypatch.setattr(frames, "read_image", spy)
    got = np.stack(list(clip.iter_frames()))
    np.testing.assert_array_equal(got, seq)
    assert threads and all(t.startswith("vcbench-decode") for t in threads), threads
    assert [b.shape[0] for b in clip.iter_batches(5)] == [5, 5, 2]


def test_a_bad_frame_fails_at_its_turn_after_the_good_ones(clip12, monkeypatch):
    clip, seq = clip12
    monkeypatch.setattr(frames, "decode_threads", lambda: 2)
    bad = clip.path / "00007.png"
    bad.write_bytes(b"not a png")
    it = clip.iter_frames()
    for k in range(7):
        np.testing.assert_array_equal(next(it), seq[k])
    with pytest.raises(InputError, match="00007.png"):
        next(it)


def _child_reads(path, q):
    q.put(int(sum(int(f[0, 0, 0]) for f in Clip("c", path, "frames").iter_frames())))


def test_a_forked_child_decodes_with_its_own_pool(clip12, monkeypatch):
    clip, seq = clip12
    monkeypatch.setattr(frames, "decode_threads", lambda: 2)
    list(clip.iter_frames())  # the parent's pool exists and its threads are alive
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    proc = ctx.Process(target=_child_reads, args=(clip.path, q))
    proc.start()
    proc.join(60)
    alive = proc.is_alive()
    if alive:
        proc.kill()
    assert not alive, "the forked child hung on the parent's dead decode threads"
    assert q.get(timeout=5) == int(seq[:, 0, 0, 0].astype(int).sum())
