"""The weights resolver and `vcbench weights`: order, hashes, offline errors, safe loading."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import threading

import pytest
import torch

import vcbench.cli
from vcbench.errors import WeightsError
from vcbench.weights import (
    REGISTRY,
    WeightFile,
    WeightSpec,
    checkpoints_dir,
    digests,
    hash_prefix_from_filename,
    load_state_dict,
    resolve,
    sha256_file,
    torch_home,
    unverified,
)
from vcbench.weights import _sha256_cached


def _state_dict_bytes(seed: int) -> bytes:
    g = torch.Generator().manual_seed(seed)
    sd = {"conv.weight": torch.randn(4, 3, 3, 3, generator=g), "conv.bias": torch.randn(4, generator=g)}
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


@pytest.fixture
def tiny(monkeypatch):
    """A test-only registry entry whose file name carries the sha256 prefix of its real content."""
    data = _state_dict_bytes(0)
    digest = hashlib.sha256(data).hexdigest()
    spec = WeightSpec("tinynet", f"tinynet-{digest[:8]}.pth", "http://127.0.0.1:9/tinynet.pth")
    monkeypatch.setitem(REGISTRY, spec.name, spec)
    return spec, data, digest


def test_registry_prefixes_come_from_the_file_names():
    expected = {"inception_fid": "6726825d", "alexnet": "7be5be79", "vgg19": "dcbb9e9d", "raft_large": "ff5fadd5",
                "flownet2_things": "d63b53a7", "zhang16": "9b330a0b", "zhang17": "df00044c", "devc_zip": None}
    assert {k: REGISTRY[k].sha256_prefix for k in expected} == expected
    assert not REGISTRY["devc_zip"].has_hash
    assert hash_prefix_from_filename("pt_inception-2015-12-05-6726825d.pth") == "6726825d"
    assert hash_prefix_from_filename("colorization_checkpoint.zip") is None
    for spec in REGISTRY.values():
        assert spec.url.startswith("https://")
        assert spec.url.endswith("/" + spec.filename) or spec.manual, spec.name
    assert {s.name for s in REGISTRY.values() if s.manual} == {"lai18", "instcolor_zip", "tcvc"}


def test_file_without_a_direct_download_is_never_fetched(monkeypatch):
    """A dead link or a Google Drive page is not tried even online: one error saying where the copy goes."""
    import vcbench.weights as W

    monkeypatch.delenv("VCBENCH_OFFLINE", raising=False)
    monkeypatch.setattr(W, "_download_file", lambda *a, **k: pytest.fail("a manual file was downloaded"))
    with pytest.raises(WeightsError, match="has no direct download") as err:
        resolve("lai18")
    assert "cannot be downloaded automatically (the official link is dead)" in str(err.value)
    assert "ECCV18_blind_consistency.pth" in str(err.value) and "vcbench weights download" not in str(err.value)


def test_torch_home_follows_env_like_torch_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert torch_home() == tmp_path / "th"
    assert checkpoints_dir() == tmp_path / "th" / "hub" / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert checkpoints_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"


def test_resolve_cache_then_explicit_path_wins(torch_home, tiny, tmp_path):
    spec, data, digest = tiny
    cached = torch_home / "hub" / "checkpoints" / spec.filename
    cached.write_bytes(data)
    r = resolve("tinynet")
    assert (r.path, r.sha256, r.verified, r.source) == (cached, digest, True, "cache")
    assert r.used() == {spec.filename: WeightFile(digest)} and digests(r.used()) == {spec.filename: digest}
    assert unverified(r.used()) == []

    other = _state_dict_bytes(1)
    explicit = tmp_path / "elsewhere.pth"
    explicit.write_bytes(other)
    # The explicit path is used even though the cache holds a good file; its content contradicts
    # the registry's prefix, so it is refused unless allowed, and then marked.
    with pytest.raises(WeightsError, match=r"elsewhere.pth.*does not match.*--allow-unverified-weights"):
        resolve("tinynet", explicit)
    r2 = resolve("tinynet", explicit, allow_unverified=True)
    assert (r2.path, r2.verified, r2.source) == (explicit, False, "explicit")
    assert r2.sha256 == hashlib.sha256(other).hexdigest()
    assert unverified(r2.used()) == ["elsewhere.pth"]
    # A component that reports its file as verified is still caught when the registry contradicts it.
    assert unverified({spec.filename: WeightFile(r2.sha256)}) == [spec.filename]
    with pytest.raises(WeightsError, match=r"missing.pth.*not found"):
        resolve("tinynet", tmp_path / "missing.pth")


def test_mismatching_cached_file(torch_home, tiny):
    spec, _, _ = tiny
    (torch_home / "hub" / "checkpoints" / spec.filename).write_bytes(_state_dict_bytes(2))
    with pytest.raises(WeightsError, match=r"does not match the registry's [0-9a-f]{8}\.\.\. for tinynet.*"
                                           r"vcbench weights download tinynet"):
        resolve("tinynet")
    r = resolve("tinynet", allow_unverified=True)
    assert r.verified is False and r.hash_checked


def test_offline_missing_names_file_url_command_and_place(torch_home, tiny):
    spec, _, _ = tiny
    with pytest.raises(WeightsError) as info:
        resolve("tinynet")
    msg = str(info.value)
    assert spec.filename in msg and spec.url in msg and "`vcbench weights download tinynet`" in msg
    assert str(torch_home / "hub" / "checkpoints" / spec.filename) in msg and "offline" in msg
    assert "\n" not in msg
    with pytest.raises(WeightsError, match="unknown weights 'nope'.*known:.*vgg19"):
        resolve("nope")


def test_file_without_published_hash_is_unchecked_not_refused(torch_home):
    p = torch_home / "hub" / "checkpoints" / "colorization_checkpoint.zip"
    p.write_bytes(b"any bytes: the DEVC loader checks the structure")
    r = resolve("devc")  # alias of devc_zip
    assert r.verified and not r.hash_checked and r.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


def test_download_through_resolver(torch_home, tiny, monkeypatch):
    spec, data, digest = tiny

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        local = WeightSpec(spec.name, spec.filename, f"http://127.0.0.1:{srv.server_address[1]}/{spec.filename}")
        monkeypatch.setitem(REGISTRY, spec.name, local)
        monkeypatch.delenv("VCBENCH_OFFLINE")
        with pytest.raises(WeightsError, match="downloads disabled"):
            resolve("tinynet", download=False)
        r = resolve("tinynet", quiet=True)
        assert r.source == "download" and r.verified and r.sha256 == digest
        assert r.path.read_bytes() == data
        assert resolve("tinynet").source == "cache"
    finally:
        srv.shutdown()
        srv.server_close()


def test_sha256_is_cached_per_path_size_mtime(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"a" * 1000)
    before = _sha256_cached.cache_info()
    assert sha256_file(p) == hashlib.sha256(b"a" * 1000).hexdigest()
    assert sha256_file(p) == hashlib.sha256(b"a" * 1000).hexdigest()
    after = _sha256_cached.cache_info()
    assert after.misses - before.misses == 1 and after.hits - before.hits == 1
    p.write_bytes(b"b" * 1001)
    assert sha256_file(p) == hashlib.sha256(b"b" * 1001).hexdigest()


class _NotATensor:
    def __init__(self):
        self.payload = [1, 2, 3]


def test_load_state_dict_is_weights_only(tmp_path):
    good = tmp_path / "good.pth"
    good.write_bytes(_state_dict_bytes(0))
    sd = load_state_dict(good)
    assert set(sd) == {"conv.weight", "conv.bias"} and sd["conv.weight"].shape == (4, 3, 3, 3)
    nested = tmp_path / "nested.ckpt"
    torch.save({"state_dict": sd, "epoch": 3}, nested)
    assert set(load_state_dict(nested, key="state_dict")) == {"conv.weight", "conv.bias"}
    with pytest.raises(WeightsError, match=r"nested.ckpt.*no 'model' entry"):
        load_state_dict(nested, key="model")

    evil = tmp_path / "evil.pth"
    torch.save({"obj": _NotATensor()}, evil)
    with pytest.raises(WeightsError, match=r"evil.pth.*refused to load.*weights_only"):
        load_state_dict(evil)
    fn = tmp_path / "fn.pth"
    torch.save({"hook": os.system, "w": torch.zeros(1)}, fn)  # a reference to code
    with pytest.raises(WeightsError, match=r"fn.pth.*refused"):
        load_state_dict(fn)

    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(WeightsError, match=r"cut.pth.*corrupt or truncated"):
        load_state_dict(cut)
    tensor_only = tmp_path / "t.pth"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(WeightsError, match="not a state dict"):
        load_state_dict(tensor_only)


# ----------------------------------------------------------------------------------------- CLI
@pytest.fixture
def cli(monkeypatch):
    """`vcbench.cli.main` with only this command registered, so other commands cannot interfere."""
    monkeypatch.setattr(vcbench.cli, "COMMAND_MODULES", ("weights_cmd",))
    return vcbench.cli.main


def test_cli_list_and_verify(cli, torch_home, tiny, capsys):
    spec, data, _ = tiny
    ck = torch_home / "hub" / "checkpoints"
    (ck / spec.filename).write_bytes(data)
    (ck / REGISTRY["alexnet"].filename).write_bytes(b"not alexnet")
    (ck / "colorization_checkpoint.zip").write_bytes(b"zip")

    assert cli(["weights", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tinynet"]["status"] == "verified"
    assert rows["alexnet"]["status"] == "unverified"
    assert rows["devc_zip"]["status"] == "unchecked"
    assert rows["vgg19"]["status"] == "missing"
    assert rows["vgg19"]["path"] == str(ck / "vgg19-dcbb9e9d.pth")

    assert cli(["weights", "list"]) == 0
    table = capsys.readouterr().out
    assert "tinynet" in table and "unverified" in table and "vgg19-dcbb9e9d.pth" in table

    assert cli(["weights", "verify", "tinynet"]) == 0
    assert "tinynet: verified" in capsys.readouterr().out
    assert cli(["weights", "verify"]) == 2
    captured = capsys.readouterr()
    assert "sha256 mismatch for alexnet" in captured.err and "Traceback" not in captured.err
    assert cli(["weights", "verify", "vgg19"]) == 2
    assert "vcbench weights download vgg19" in capsys.readouterr().err


def test_cli_download_offline_is_one_clear_line(cli, torch_home, capsys):
    assert cli(["weights", "download", "raft_large"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("vcbench: error:")
    assert "raft_large_C_T_SKHT_V2-ff5fadd5.pth" in err and "vcbench weights download raft_large" in err
    assert "https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth" in err
    assert cli(["weights", "download", "all", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{len(REGISTRY)} of {len(REGISTRY)} weight files could not be fetched" in err
    assert cli(["weights", "download", "bogus"]) == 2
    assert "unknown weights 'bogus'" in capsys.readouterr().err


def test_cli_download_present_file(cli, torch_home, tiny, capsys):
    spec, data, _ = tiny
    (torch_home / "hub" / "checkpoints" / spec.filename).write_bytes(data)
    assert cli(["weights", "download", "tinynet"]) == 0
    assert "already present" in capsys.readouterr().out
