"""Resumable, checked downloads against a local HTTP server, and archive extraction safety."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
import time
import zipfile

import pytest

from vcbench.download import download, safe_extract
from vcbench.errors import DownloadError, InputError

PAYLOAD = os.urandom(3 * (1 << 20) + 12345)  # several chunks, not a multiple of the chunk size
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _State:
    def __init__(self):
        self.requests: list[dict] = []
        self.plan: list[str] = []  # one behaviour per request; "ok" once it runs out
        self.body = PAYLOAD
        self.honour_range = True


@pytest.fixture
def server():
    state = _State()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            rng = self.headers.get("Range")
            state.requests.append({"path": self.path, "range": rng})
            behaviour = state.plan.pop(0) if state.plan else "ok"
            if self.path.startswith("/missing") or behaviour == "404":
                self.send_error(404)
                return
            if behaviour == "500":
                self.send_error(500)
                return
            body, start, status = state.body, 0, 200
            if rng and state.honour_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                status = 206
            chunk = body[start:]
            self.send_response(status)
            self.send_header("Content-Length", str(len(chunk)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Connection", "close")
            self.end_headers()
            if behaviour == "close":  # promise everything, send nothing, hang up
                self.close_connection = True
                return
            if behaviour == "slow":  # the whole body, in two halves a moment apart
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                time.sleep(0.3)
                self.wfile.write(chunk[len(chunk) // 2:])
                return
            if behaviour == "drop":  # promise everything, send half, hang up
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    state.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield state
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    monkeypatch.delenv("VCBENCH_OFFLINE", raising=False)


def test_plain_download_checks_hash(server, tmp_path):
    dest = tmp_path / "w" / "file.bin"
    out = download(server.url + "/file.bin", dest, sha256=SHA, quiet=True)
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert not dest.with_name("file.bin.part").exists()
    assert [r["range"] for r in server.requests] == [None]


def test_dropped_connection_resumes_with_range_and_backoff(server, tmp_path):
    server.plan = ["drop", "drop"]
    sleeps: list[float] = []
    dest = tmp_path / "file.bin"
    download(server.url + "/file.bin", dest, sha256_prefix=SHA[:8], quiet=True, backoff=0.5, sleep=sleeps.append)
    assert dest.read_bytes() == PAYLOAD
    ranges = [r["range"] for r in server.requests]
    assert ranges[0] is None
    # Each resume starts exactly where the previous attempt stopped.
    first_half = len(PAYLOAD) // 2
    second = first_half + (len(PAYLOAD) - first_half) // 2
    assert ranges[1:] == [f"bytes={first_half}-", f"bytes={second}-"]
    assert sleeps == [0.5, 1.0]


def test_server_error_is_retried_and_ignored_range_restarts(server, tmp_path):
    dest = tmp_path / "file.bin"
    dest.with_name("file.bin.part").write_bytes(b"stale bytes from an older attempt")
    server.honour_range = False
    server.plan = ["500"]
    sleeps: list[float] = []
    download(server.url + "/file.bin", dest, sha256=SHA, quiet=True, sleep=sleeps.append)
    assert dest.read_bytes() == PAYLOAD and sleeps == [1.0]
    assert len(server.requests) == 2


def test_retries_exhausted_keeps_partial_file_for_resume(server, tmp_path):
    server.plan = ["drop"] * 3
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match=r"failed after 3 attempts.*resumes"):
        download(server.url + "/file.bin", dest, sha256=SHA, retries=2, quiet=True, sleep=lambda s: None)
    part = dest.with_name("file.bin.part")
    assert not dest.exists() and 0 < part.stat().st_size < len(PAYLOAD)
    # A rerun continues from the kept part and finishes.
    download(server.url + "/file.bin", dest, sha256=SHA, quiet=True)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == f"bytes={part_size_after(server)}-"


def part_size_after(server) -> int:
    # Three "drop" attempts: each delivers half of what remained.
    have = 0
    for _ in range(3):
        have += (len(PAYLOAD) - have) // 2
    return have


def test_checksum_mismatch_leaves_no_file_and_keeps_the_good_one(server, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"the good old file")
    with pytest.raises(DownloadError, match=r"checksum mismatch.*deleted"):
        download(server.url + "/file.bin", dest, sha256_prefix="00000000", quiet=True)
    assert dest.read_bytes() == b"the good old file"
    assert not dest.with_name("file.bin.part").exists()
    fresh = tmp_path / "fresh.bin"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(server.url + "/file.bin", fresh, sha256="f" * 64, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["file.bin"]


def test_dead_link_fails_at_once(server, tmp_path):
    sleeps: list[float] = []
    with pytest.raises(DownloadError, match=r"dead link.*/missing/x.pth.*404"):
        download(server.url + "/missing/x.pth", tmp_path / "x.pth", quiet=True, sleep=sleeps.append)
    assert len(server.requests) == 1 and sleeps == []
    assert not (tmp_path / "x.pth").exists()


def test_unreachable_host_is_a_download_error(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError, match="failed after 2 attempts"):
        download(f"http://127.0.0.1:{port}/f", tmp_path / "f", retries=1, quiet=True, sleep=lambda s: None)


def test_unresolvable_host_fails_at_once_without_retries(tmp_path, monkeypatch):
    """No DNS means no network: retrying only stalls every run that lacks a weight file."""
    import socket

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    sleeps: list[float] = []
    with pytest.raises(DownloadError, match=r"cannot reach weights\.example\.org .*no network"):
        download("https://weights.example.org/f.pth", tmp_path / "f.pth", quiet=True, sleep=sleeps.append)
    assert sleeps == []
    assert not (tmp_path / "f.pth").exists()


def test_offline_mode_forbids_downloads(server, tmp_path, monkeypatch):
    monkeypatch.setenv("VCBENCH_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline"):
        download(server.url + "/file.bin", tmp_path / "f", quiet=True)
    assert server.requests == []


def _listing(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


@pytest.mark.parametrize("how", ["refused", "no bytes", "server error", "dead link"])
def test_failed_fetch_leaves_the_hub_as_it_was(server, torch_home, how):
    """No `.lock` and no empty `.part` beside the cached weights after a fetch that got nothing."""
    hub = torch_home / "hub" / "checkpoints"
    (hub / "alexnet-owt-7be5be79.pth").write_bytes(b"a user's earlier download")
    before = _listing(hub)
    url = {"refused": f"http://127.0.0.1:{_closed_port()}/vgg19-dcbb9e9d.pth",
           "dead link": server.url + "/missing/vgg19-dcbb9e9d.pth"}.get(how, server.url + "/vgg19-dcbb9e9d.pth")
    server.plan = {"no bytes": ["close"] * 3, "server error": ["500"] * 3}.get(how, [])
    with pytest.raises(DownloadError):
        download(url, hub / "vgg19-dcbb9e9d.pth", sha256=SHA, retries=2, quiet=True, sleep=lambda s: None)
    assert _listing(hub) == before


def test_a_partial_fetch_keeps_only_its_part_for_resume(server, torch_home):
    hub = torch_home / "hub" / "checkpoints"
    server.plan = ["drop", "500", "500"]
    with pytest.raises(DownloadError):
        download(server.url + "/f.pth", hub / "f.pth", sha256=SHA, retries=2, quiet=True, sleep=lambda s: None)
    assert sorted(p.name for p in hub.iterdir()) == ["f.pth.part"]
    assert (hub / "f.pth.part").stat().st_size == len(PAYLOAD) // 2


def test_concurrent_downloads_of_one_file_fetch_it_once(server, tmp_path):
    """The lock on the `.part` file still serialises two downloaders: the second waits, sees the
    finished file (the first renamed the `.part` it waited on) and fetches nothing."""
    server.plan = ["slow"]
    dest = tmp_path / "file.bin"
    results, errors = [], []

    def fetch():
        try:
            results.append(download(server.url + "/file.bin", dest, sha256=SHA, quiet=True))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert errors == [] and results == [dest, dest]
    assert len(server.requests) == 1 and dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


# ------------------------------------------------------------------------------------ extraction
def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _tar(path, members: list[tarfile.TarInfo], data: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            payload = data.get(m.name)
            if payload is not None:
                m.size = len(payload)
            tf.addfile(m, io.BytesIO(payload) if payload is not None else None)


def test_safe_extract_good_zip_and_tar(tmp_path):
    _zip(tmp_path / "a.zip", {"checkpoints/x/net.pth": b"abc", "data/vgg.pth": b"def"})
    files = safe_extract(tmp_path / "a.zip", tmp_path / "out_zip")
    assert sorted(p.relative_to((tmp_path / "out_zip").resolve()).as_posix() for p in files) == [
        "checkpoints/x/net.pth", "data/vgg.pth"]
    assert (tmp_path / "out_zip" / "data" / "vgg.pth").read_bytes() == b"def"

    f = tarfile.TarInfo("clip/a.txt")
    link = tarfile.TarInfo("clip/link")
    link.type, link.linkname = tarfile.SYMTYPE, "a.txt"
    _tar(tmp_path / "a.tgz", [f, link], {"clip/a.txt": b"hello"})
    safe_extract(tmp_path / "a.tgz", tmp_path / "out_tar")
    assert (tmp_path / "out_tar" / "clip" / "link").read_bytes() == b"hello"


@pytest.mark.parametrize("bad", ["../evil.txt", "ok/../../evil.txt", "/tmp/vcbench_evil_abs.txt"])
def test_safe_extract_refuses_traversal_in_zip(tmp_path, bad):
    _zip(tmp_path / "bad.zip", {"good.txt": b"x", bad: b"evil"})
    with pytest.raises(InputError, match=r"bad.zip.*refusing"):
        safe_extract(tmp_path / "bad.zip", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # nothing extracted, not even the good member
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kind", ["dotdot", "abs", "symlink_out", "symlink_abs", "hardlink_out"])
def test_safe_extract_refuses_traversal_in_tar(tmp_path, kind):
    good = tarfile.TarInfo("good.txt")
    m = tarfile.TarInfo({"dotdot": "../evil.txt", "abs": "/tmp/vcbench_evil.txt"}.get(kind, "inside/link"))
    if kind.startswith("symlink"):
        m.type = tarfile.SYMTYPE
        m.linkname = "../../../etc/passwd" if kind == "symlink_out" else "/etc/passwd"
    elif kind == "hardlink_out":
        m.type = tarfile.LNKTYPE
        m.linkname = "../outside.txt"
    data = {"good.txt": b"x"}
    if m.type == tarfile.REGTYPE:
        data[m.name] = b"evil"
    _tar(tmp_path / "bad.tar.gz", [good, m], data)
    with pytest.raises(InputError, match=r"bad.tar.gz.*refusing"):
        safe_extract(tmp_path / "bad.tar.gz", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_safe_extract_corrupt_archive(tmp_path):
    (tmp_path / "junk.zip").write_bytes(b"this is no archive" * 20)
    with pytest.raises(InputError, match="junk.zip"):
        safe_extract(tmp_path / "junk.zip", tmp_path / "out")


# ------------------------------------------------------------------------ extraction size limits
MIB = 1 << 20


def _deflated_zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_zip_bomb_member_is_refused_before_anything_is_written(tmp_path):
    """4 MiB of zeros deflate about 1000:1 (the issue's 1028:1 zip wrote all 400 MB)."""
    _deflated_zip(tmp_path / "bomb.zip", {"readme.txt": b"hello", "frames/bomb.bin": b"\0" * (4 * MIB)})
    assert (tmp_path / "bomb.zip").stat().st_size < 20_000
    with pytest.raises(InputError, match=r"bomb\.zip: archive member 'frames/bomb\.bin' would inflate \d+:1 "
                                         r"\(4194304 bytes\), above the 100:1 limit .*VCBENCH_MAX_EXTRACT_RATIO"):
        safe_extract(tmp_path / "bomb.zip", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_tar_gz_bomb_is_refused(tmp_path):
    """A compressed tar has no per-member compressed size: the whole stream's ratio is checked."""
    _tar(tmp_path / "bomb.tar.gz", [tarfile.TarInfo("a.txt"), tarfile.TarInfo("b.bin")],
         {"a.txt": b"x", "b.bin": b"\0" * (4 * MIB)})
    with pytest.raises(InputError, match=r"bomb\.tar\.gz: archive member \(the whole archive\) would inflate"):
        safe_extract(tmp_path / "bomb.tar.gz", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_total_size_limit_by_argument_and_environment(tmp_path, monkeypatch):
    members = {"clip1.mp4": os.urandom(MIB), "clip2.mp4": os.urandom(MIB)}  # incompressible, like video
    _deflated_zip(tmp_path / "videos.zip", members)
    with pytest.raises(InputError, match=r"videos\.zip: archive would extract to 2097152 bytes, above the limit "
                                         r"of 1500000 bytes; refusing to extract.*VCBENCH_MAX_EXTRACT_GB"):
        safe_extract(tmp_path / "videos.zip", tmp_path / "out", max_total_bytes=1_500_000)
    assert list((tmp_path / "out").iterdir()) == []
    tar_members = [tarfile.TarInfo(n) for n in members]
    _tar(tmp_path / "videos.tar.gz", tar_members, members)
    monkeypatch.setenv("VCBENCH_MAX_EXTRACT_GB", "0.001")  # 1.07 MB
    with pytest.raises(InputError, match=r"videos\.tar\.gz: archive would extract to 2097152 bytes"):
        safe_extract(tmp_path / "videos.tar.gz", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    monkeypatch.setenv("VCBENCH_MAX_EXTRACT_GB", "lots")
    with pytest.raises(InputError, match="VCBENCH_MAX_EXTRACT_GB='lots' is not a number"):
        safe_extract(tmp_path / "videos.tar.gz", tmp_path / "out")
    monkeypatch.delenv("VCBENCH_MAX_EXTRACT_GB")
    got = safe_extract(tmp_path / "videos.tar.gz", tmp_path / "out")
    assert sorted(p.name for p in got) == ["clip1.mp4", "clip2.mp4"]
    assert (tmp_path / "out" / "clip2.mp4").read_bytes() == members["clip2.mp4"]


def test_real_data_archives_pass_the_default_limits(tmp_path):
    """Images and videos compress little; small text files may compress well and are not ratio-checked."""
    lists = b"bear\nblackswan\n" * 20_000  # 300 KB that deflates far beyond 100:1
    members = {"DAVIS/bear/00000.jpg": os.urandom(2 * MIB), "DAVIS/list.txt": lists}
    _deflated_zip(tmp_path / "test.zip", members)
    safe_extract(tmp_path / "test.zip", tmp_path / "root")
    assert (tmp_path / "root" / "DAVIS" / "list.txt").read_bytes() == lists
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["DAVIS"]  # no staging folder left


def test_failed_extraction_leaves_nothing_half_extracted(tmp_path):
    """A corrupt member after good ones: none of the archive appears in dest (today the earlier members
    stayed, and a later run could take the half-extracted folder for the data set)."""
    good = os.urandom(100_000)
    _zip(tmp_path / "t.zip", {"set/a.bin": good, "set/b.bin": b"B" * 50_000})
    raw = bytearray((tmp_path / "t.zip").read_bytes())
    at = raw.index(b"B" * 1000)
    raw[at:at + 10] = b"X" * 10  # stored member: its CRC no longer matches
    (tmp_path / "t.zip").write_bytes(bytes(raw))
    dest = tmp_path / "root"
    dest.mkdir()
    (dest / "other.txt").write_text("the user's")
    with pytest.raises(InputError, match=r"t\.zip: corrupt zip archive \(Bad CRC-32"):
        safe_extract(tmp_path / "t.zip", dest)
    assert sorted(p.name for p in dest.iterdir()) == ["other.txt"]
    # Merging into an existing folder still works once the archive is good.
    _zip(tmp_path / "ok.zip", {"set/a.bin": good})
    (dest / "set").mkdir()
    (dest / "set" / "mine.txt").write_text("kept")
    safe_extract(tmp_path / "ok.zip", dest)
    assert sorted(p.name for p in (dest / "set").iterdir()) == ["a.bin", "mine.txt"]


def test_build_dataset_refuses_a_bomb_archive_in_one_line(tmp_path, capsys):
    from vcbench.cli import main

    inp = tmp_path / "downloads"
    inp.mkdir()
    _tar(inp / "Hollywood2-actions.tar.gz", [tarfile.TarInfo("Hollywood2/AVIClips/x.avi")],
         {"Hollywood2/AVIClips/x.avi": b"\0" * (4 * MIB)})
    code = main(["build-dataset", "--source", "hollywood2", "--input", str(inp), "--out", str(tmp_path / "b"),
                 "--clips", "2", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "Hollywood2-actions.tar.gz: archive member (the whole archive) would inflate" in err
    assert not list((tmp_path / "b").rglob("*.avi"))
