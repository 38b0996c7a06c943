"""One sha256 of a file: `vcbench.hashing.sha256_file`, under the weights memo, downloads and benchmarks."""

from __future__ import annotations

import hashlib

import vcbench.hashing
from vcbench import weights
from vcbench.benchmarks import base


def test_sha256_file_matches_hashlib_across_block_boundaries(tmp_path):
    data = bytes(range(256)) * ((vcbench.hashing.CHUNK // 256) + 3)  # more than one read block
    p = tmp_path / "blob.bin"
    p.write_bytes(data)
    assert vcbench.hashing.sha256_file(p) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert vcbench.hashing.sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_weights_and_benchmarks_use_the_one_helper(tmp_path, monkeypatch):
    calls: list[str] = []
    real = vcbench.hashing.sha256_file

    def counting(path):
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(vcbench.hashing, "sha256_file", counting)
    p = tmp_path / "w.pth"
    p.write_bytes(b"weights")
    weights._sha256_cached.cache_clear()
    assert weights.sha256_file(p) == hashlib.sha256(b"weights").hexdigest()
    assert weights.sha256_file(p) == hashlib.sha256(b"weights").hexdigest()  # memo: hashed once
    assert len(calls) == 1
    monkeypatch.setattr(base, "sha256_file", counting)
    f = tmp_path / "00000.png"
    f.write_bytes(b"frame")
    expected = hashlib.sha256(f"00000.png\t5\t{hashlib.sha256(b'frame').hexdigest()}\n".encode()).hexdigest()
    assert base.content_checksum([("00000.png", f)]) == expected
    assert calls[-1] == str(f)


def test_frames_digest_is_the_gt_cache_frames_key(tmp_path):
    """`frames_digest` of the frame files' hex digests gives the bytes the GT cache has always keyed a
    frames clip by: sha256(b"frames\\0" + raw digests in frame order) (plan risk 5)."""
    from vcbench.frames import Clip
    from vcbench.metrics import gt_cache

    clip_dir = tmp_path / "clip"
    clip_dir.mkdir()
    blobs = [b"frame zero", b"frame one" * 1000, b""]
    for i, data in enumerate(blobs):
        (clip_dir / f"{i:05d}.png").write_bytes(data)
    raw = [hashlib.sha256(d).digest() for d in blobs]
    want = hashlib.sha256(b"frames\0" + b"".join(raw)).hexdigest()
    assert vcbench.hashing.frames_digest([r.hex() for r in raw]) == want
    assert gt_cache.clip_digest(Clip("clip", clip_dir, "frames")) == want
    assert vcbench.hashing.frames_digest([r.hex() for r in reversed(raw)]) != want  # order counts
    assert vcbench.hashing.video_digest(raw[0].hex()) == hashlib.sha256(b"video\0" + raw[0]).hexdigest()


def test_weight_hashes_are_remembered_across_runs_by_path_size_and_mtime(tmp_path, monkeypatch):
    """A second process (the in-process memo cleared) reads the digest from the cache folder instead of
    hashing again; a rewritten file (other size or mtime) is hashed anew; the run still gets the digest."""
    import json
    import os

    from vcbench.metrics.gt_cache import default_cache_dir

    calls: list[str] = []
    real = vcbench.hashing.sha256_file
    monkeypatch.setattr(vcbench.hashing, "sha256_file", lambda p: calls.append(str(p)) or real(p))
    p = tmp_path / "w.pth"
    p.write_bytes(b"weights")
    weights._sha256_cached.cache_clear()
    assert weights.sha256_file(p) == hashlib.sha256(b"weights").hexdigest()
    store = default_cache_dir() / vcbench.hashing.HASH_CACHE_FILE
    assert list(json.loads(store.read_text()).values()) == [hashlib.sha256(b"weights").hexdigest()]
    weights._sha256_cached.cache_clear()  # as in a new process
    assert weights.sha256_file(p) == hashlib.sha256(b"weights").hexdigest()
    assert len(calls) == 1
    p.write_bytes(b"other weights")
    os.utime(p, ns=(1, 1))
    weights._sha256_cached.cache_clear()
    assert weights.sha256_file(p) == hashlib.sha256(b"other weights").hexdigest()
    assert len(calls) == 2 and len(json.loads(store.read_text())) == 1  # the stale entry was replaced
    store.write_text("{not json")  # a damaged store only costs the hash
    weights._sha256_cached.cache_clear()
    assert weights.sha256_file(p) == hashlib.sha256(b"other weights").hexdigest() and len(calls) == 3
