"""One sha256 of a file: `vcbench.hashing.sha256_file`, under the weights memo, downloads and benchmarks."""

from __future__ import annotations

import hashlib

import vcbench.hashing
from vcbench import weights
from vcbench.datasets import benchmarks


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
    monkeypatch.setattr(benchmarks, "sha256_file", counting)
    f = tmp_path / "00000.png"
    f.write_bytes(b"frame")
    expected = hashlib.sha256(f"00000.png\t5\t{hashlib.sha256(b'frame').hexdigest()}\n".encode()).hexdigest()
    assert benchmarks.content_checksum([("00000.png", f)]) == expected
    assert calls[-1] == str(f)
