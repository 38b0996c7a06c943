"""Sources of build-dataset: local folders, the bundled sample, a Videvo-style CSV and Hollywood
archives served by a local HTTP server (never the internet), dead links, rate limiting, checksums."""

from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import tarfile
import threading
import time
from pathlib import Path

import pytest

from vcbench.trainset.sources import resolve_source
from vcbench.trainset.sources.base import SourceOptions
from vcbench.trainset.sources.fetch import RateLimiter
from vcbench.errors import InputError
from vcbench.frames import sample_videos
from vcbench.ids import safe_id


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    monkeypatch.delenv("VCBENCH_OFFLINE", raising=False)


@pytest.fixture
def server(tmp_path):
    """127.0.0.1 HTTP server over a folder holding a copy of a real mp4 (missing names give 404)."""
    root = tmp_path / "www"
    root.mkdir()
    shutil.copyfile(sample_videos()["carphone_pristine"], root / "carphone.mp4")
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            return None

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, requests
    httpd.shutdown()
    httpd.server_close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sample_source_lists_bundled_videos(tmp_path):
    res = resolve_source("sample", SourceOptions(download_dir=tmp_path))
    ids = [v.video_id for v in res.videos]
    assert ids == ["bigbuckbunny", "bikes", "carphone_pristine"]  # the distorted copy is a duplicate
    assert all(v.path.is_file() and v.licence and v.origin for v in res.videos)
    assert not res.failures


def test_local_source_natural_order_and_errors(tmp_path):
    src = sample_videos()["carphone_pristine"]
    (tmp_path / "in" / "b").mkdir(parents=True)
    shutil.copyfile(src, tmp_path / "in" / "clip10.mp4")
    shutil.copyfile(src, tmp_path / "in" / "clip2.mp4")
    shutil.copyfile(src, tmp_path / "in" / "b" / "x y.mp4")
    (tmp_path / "in" / "notes.txt").write_text("not a video")
    res = resolve_source("local", SourceOptions(download_dir=tmp_path / "dl", input=tmp_path / "in"))
    assert [v.video_id for v in res.videos] == ["b__x-y", "clip2", "clip10"]
    assert all(v.source == "local" for v in res.videos)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no video files"):
        resolve_source("local", SourceOptions(download_dir=tmp_path / "dl", input=tmp_path / "empty"))
    with pytest.raises(InputError, match="needs --input"):
        resolve_source("local", SourceOptions(download_dir=tmp_path / "dl"))


def test_safe_id_strips_dots_for_devc_names():
    assert safe_id("a.b c/d") == "a-b-c-d"
    with pytest.raises(InputError):
        safe_id("...")


def test_videvo_csv_downloads_records_licence_and_skips_dead_link(tmp_path, server):
    base, root, requests = server
    csv = tmp_path / "clips.csv"
    csv.write_text("url,licence,origin\n"
                   f"{base}/carphone.mp4,Videvo Attribution License,https://www.videvo.net/video/carphone/\n"
                   f"{base}/gone.mp4,Videvo Standard License,https://www.videvo.net/video/gone/\n")
    opts = SourceOptions(download_dir=tmp_path / "dl", urls=csv, min_interval_s=0.0, retries=1)
    res = resolve_source("videvo", opts)
    assert [v.video_id for v in res.videos] == ["carphone"]
    v = res.videos[0]
    assert v.licence == "Videvo Attribution License" and v.origin.endswith("/carphone/")
    assert _sha(v.path) == _sha(root / "carphone.mp4")
    assert len(res.failures) == 1 and res.failures[0].item == "gone" and "404" in res.failures[0].reason
    record = (tmp_path / "dl" / "videvo" / "checksums.json").read_text()
    assert _sha(v.path) in record
    n = len([r for r in requests if r.endswith("carphone.mp4")])
    again = resolve_source("videvo", opts)  # complete file with a recorded checksum: not fetched again
    assert [x.video_id for x in again.videos] == ["carphone"]
    assert len([r for r in requests if r.endswith("carphone.mp4")]) == n


def test_videvo_csv_checks_published_sha256(tmp_path, server):
    base, root, _ = server
    csv = tmp_path / "clips.csv"
    csv.write_text(f"url,license,sha256\n{base}/carphone.mp4,CC0,{'0' * 64}\n")
    res = resolve_source("videvo", SourceOptions(download_dir=tmp_path / "dl", urls=csv, min_interval_s=0.0, retries=0))
    assert not res.videos and "sha256" in res.failures[0].reason.lower()


def test_videvo_csv_without_licence_is_refused(tmp_path):
    csv = tmp_path / "clips.csv"
    csv.write_text("url\nhttp://127.0.0.1:9/x.mp4\n")
    with pytest.raises(InputError, match="licence"):
        resolve_source("videvo", SourceOptions(download_dir=tmp_path / "dl", urls=csv))


def test_rate_limiter_spaces_requests_per_host():
    now = [0.0]
    waits: list[float] = []

    def sleep(s):
        waits.append(s)
        now[0] += s

    lim = RateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    assert lim.wait("http://a.example/1") == 0.0
    now[0] += 0.5
    assert lim.wait("http://a.example/2") == pytest.approx(1.5)
    assert lim.wait("http://b.example/1") == 0.0  # another host is not delayed
    now[0] += 3.0
    assert lim.wait("http://a.example/3") == 0.0
    assert waits == [pytest.approx(1.5)]


def test_fetcher_rate_limits_real_requests(tmp_path, server):
    base, root, requests = server
    shutil.copyfile(root / "carphone.mp4", root / "second.mp4")
    csv = tmp_path / "clips.csv"
    csv.write_text(f"url,licence\n{base}/carphone.mp4,CC0\n{base}/second.mp4,CC0\n")
    t0 = time.monotonic()
    res = resolve_source("videvo", SourceOptions(download_dir=tmp_path / "dl", urls=csv, min_interval_s=0.4, retries=0))
    assert len(res.videos) == 2
    assert time.monotonic() - t0 >= 0.4


def _tar_with(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_hollywood2_archive_from_urls_is_extracted(tmp_path, server):
    base, root, _ = server
    video = (root / "carphone.mp4").read_bytes()
    _tar_with(root / "Hollywood2-actions.tar.gz", {"Hollywood2/AVIClips/actioncliptrain00001.mp4": video})
    md5 = hashlib.md5((root / "Hollywood2-actions.tar.gz").read_bytes()).hexdigest()
    urls = tmp_path / "archives.csv"
    urls.write_text(f"url,md5\n{base}/Hollywood2-actions.tar.gz,{md5}\n{base}/missing.tar.gz,\n")
    res = resolve_source("hollywood2", SourceOptions(download_dir=tmp_path / "dl", urls=urls, min_interval_s=0.0, retries=0))
    assert [v.video_id for v in res.videos] == ["actioncliptrain00001"]
    assert res.videos[0].source == "hollywood2" and "Hollywood2" in res.videos[0].licence
    assert hashlib.sha256(res.videos[0].path.read_bytes()).hexdigest() == hashlib.sha256(video).hexdigest()
    assert [f.item for f in res.failures] == ["missing.tar.gz"]


def test_hollywood_md5_mismatch_is_a_logged_failure(tmp_path, server):
    base, root, _ = server
    _tar_with(root / "h3d.tar.gz", {"clips/a.mp4": (root / "carphone.mp4").read_bytes()})
    urls = tmp_path / "archives.csv"
    urls.write_text(f"url,md5\n{base}/h3d.tar.gz,{'f' * 32}\n")
    res = resolve_source("hollywood3d", SourceOptions(download_dir=tmp_path / "dl", urls=urls, min_interval_s=0.0, retries=0))
    assert not res.videos and "md5" in res.failures[0].reason
    assert not (tmp_path / "dl" / "hollywood3d" / "h3d.tar.gz").exists()


def test_hollywood_hostile_archive_is_refused(tmp_path):
    arc = _tar_with(tmp_path / "evil.tar.gz", {"../escape.mp4": b"x"})
    with pytest.raises(InputError, match="outside"):
        resolve_source("hollywood2", SourceOptions(download_dir=tmp_path / "dl", input=arc))
    assert not (tmp_path / "escape.mp4").exists()
    assert not list((tmp_path / "dl" / "hollywood2").glob("extracted-*"))


def test_hollywood3d_needs_urls_or_input(tmp_path):
    with pytest.raises(InputError, match="cvssp.org/Hollywood3D"):
        resolve_source("hollywood3d", SourceOptions(download_dir=tmp_path / "dl"))


def test_videvo_id_rows_use_local_files(tmp_path):
    local = tmp_path / "have"
    local.mkdir()
    shutil.copyfile(sample_videos()["carphone_pristine"], local / "clip-7.mp4")
    csv = tmp_path / "clips.csv"
    csv.write_text("id,licence,origin\nclip-7,Videvo Free License,https://www.videvo.net/video/clip-7/\n"
                   "clip-8,Videvo Free License,https://www.videvo.net/video/clip-8/\n")
    res = resolve_source("videvo", SourceOptions(download_dir=tmp_path / "dl", urls=csv, input=local))
    assert [(v.video_id, v.path.name, v.licence) for v in res.videos] == [("clip-7", "clip-7.mp4", "Videvo Free License")]
    assert [f.item for f in res.failures] == ["clip-8"]


def test_sources_are_one_registry_with_the_old_names_and_message(tmp_path):
    """SOURCES (a vcbench.registry.Registry) holds the five sources in their order, each loaded only
    when asked for; an unknown name gives the one line it gave before."""
    from vcbench.registry import Registry
    from vcbench.trainset.sources import SOURCES

    assert isinstance(SOURCES, Registry)
    assert SOURCES.names() == ["sample", "local", "videvo", "hollywood2", "hollywood3d"]
    with pytest.raises(InputError) as exc:
        resolve_source("youtube", SourceOptions(download_dir=tmp_path))
    assert str(exc.value) == "unknown source 'youtube'. choose one of sample, local, videvo, hollywood2, hollywood3d."
