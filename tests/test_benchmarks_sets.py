"""Benchmark sets: the bundled sample, Lai et al.'s DAVIS/Videvo lists, ImageNet ctest10k, folders."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import vcbench.benchmarks as B
from vcbench import paths
from vcbench.benchmarks import base, lai
from vcbench.errors import InputError
from vcbench.frames import Clip, read_image, sample_videos
from vcbench.stills import load_skimage_still


@pytest.fixture(scope="module")
def tiny_frames() -> list[np.ndarray]:
    """Three real frames (carphone), 16x20, to populate fake benchmark folders quickly."""
    clip = Clip("carphone", sample_videos()["carphone_pristine"], "video")
    out = []
    for i, f in enumerate(clip.iter_frames()):
        t = torch.from_numpy(f).permute(2, 0, 1)[None].float()
        out.append(F.interpolate(t, size=(16, 20), mode="area")[0].permute(1, 2, 0).round().byte().numpy())
        if i == 2:
            break
    return out


def _video_folder(root: Path, names: list[str], frames: list[np.ndarray], ext: str = "jpg") -> None:
    for n in names:
        (root / n).mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(frames[:2]):
            Image.fromarray(f).save(root / n / f"{i:05d}.{ext}")


# ---------------------------------------------------------------------------------- sample
def test_sample_is_built_once_atomically_and_checksummed(tmp_path):
    b = B.load_benchmark("sample", cache_dir=tmp_path, options={"frames": 3, "width": 64})
    assert b.name == "sample" and [c.name for c in b.clips] == ["bigbuckbunny", "bikes", "carphone"]
    for c in b.clips:
        h, w = c.size()
        assert c.num_frames() == 3 and w <= 64 and h % 2 == 0
    assert b.clips[0].size() == (36, 64)  # 1280x720 -> 64 wide, aspect kept
    assert b.protocol["frames"] == 3 and b.protocol["width"] == 64 and b.reference_mode == "first-frame"
    # the frames are the video's, downscaled: close to an independent area downscale of frame 0
    first = next(iter(Clip("b", sample_videos()["bikes"], "video").iter_frames()))
    t = torch.from_numpy(first).permute(2, 0, 1)[None].float()
    want = F.interpolate(t, size=b.clips[1].size(), mode="area")[0].permute(1, 2, 0).numpy()
    got = read_image(b.clips[1].frame_paths()[0]).astype(np.float64)
    assert 10 * np.log10(255 ** 2 / ((got - want) ** 2).mean()) > 30
    # first-frame mode: the reference is the first GT frame
    ref = b.references(b.clips[1])
    assert len(ref) == 1 and np.array_equal(ref[0], read_image(b.clips[1].frame_paths()[0]))
    # built once: a second load reuses the folder and gives the same checksum; no temporary leftovers
    stamp = b.clips[0].frame_paths()[0].stat().st_mtime_ns
    again = B.load_benchmark("sample", cache_dir=tmp_path, options={"frames": 3, "width": 64})
    assert again.checksum == b.checksum and len(b.checksum) == 64
    assert again.clips[0].frame_paths()[0].stat().st_mtime_ns == stamp
    assert not [p for p in (tmp_path / "benchmarks").iterdir() if p.name.startswith(".")]
    # any change of content changes the checksum
    p = b.clips[2].frame_paths()[1]
    img = read_image(p).copy()
    img[0, 0] ^= 1
    Image.fromarray(img).save(p)
    assert B.load_benchmark("sample", cache_dir=tmp_path, options={"frames": 3, "width": 64}).checksum != b.checksum


def test_sample_exemplar_mode_uses_the_scikit_image_stills(tmp_path):
    b = B.load_benchmark("sample", reference="exemplar", cache_dir=tmp_path,
                         options={"frames": 2, "width": 48, "clips": "bikes,carphone"})
    assert [c.name for c in b.clips] == ["bikes", "carphone"]
    assert b.protocol["exemplars"] == {"bikes": "skimage:motorcycle_left", "carphone": "skimage:astronaut"}
    refs = b.references(b.clips[1])
    assert np.array_equal(refs[0], load_skimage_still("astronaut"))
    first = B.load_benchmark("sample", cache_dir=tmp_path, options={"frames": 2, "width": 48, "clips": "bikes,carphone"})
    assert first.checksum != b.checksum  # the exemplars are part of the content



def _lines_checksum(lines: list[str]) -> str:
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()


def _file_line(name: str, path: Path) -> str:
    return f"{name}\t{path.stat().st_size}\t{hashlib.sha256(path.read_bytes()).hexdigest()}"


def test_checksum_lines_clips_then_exemplars_then_labels(tmp_path, tiny_frames):
    """The checksum's bytes, written out independently (plan risk 4): one `name<TAB>size<TAB>sha256`
    line per frame in clip order, then `exemplar:<clip>/<file>` lines by clip, then ImageNet's
    `labels<TAB><sha256 of the list>` line."""
    b = B.load_benchmark("sample", reference="exemplar", cache_dir=tmp_path,
                         options={"frames": 2, "width": 40, "clips": "carphone,bikes"})
    lines = [_file_line(f"{c.name}/{p.name}", p) for c in b.clips for p in c.frame_paths()]
    lines += [_file_line(f"exemplar:{c}/{b.exemplars[c][0].name}", b.exemplars[c][0]) for c in ("bikes", "carphone")]
    assert [c.name for c in b.clips] == ["bikes", "carphone"] and b.checksum == _lines_checksum(lines)
    entries = B.imagenet_entries()[:2]
    for (synset, fname, _), frame in zip(entries, tiny_frames):
        (tmp_path / "val" / synset).mkdir(parents=True)
        Image.fromarray(frame).save(tmp_path / "val" / synset / fname, format="JPEG")
    im = B.load_benchmark("imagenet-ctest10k", data_root=tmp_path / "val", options={"limit": 2})
    listed = "\n".join(f"{s}/{f} {lab}" for s, f, lab in entries)
    lines = [_file_line(f"{Path(f).stem}/{f}", tmp_path / "val" / s / f) for s, f, _ in entries]
    assert im.checksum == _lines_checksum(lines + [f"labels\t{hashlib.sha256(listed.encode()).hexdigest()}"])


def test_loading_hashes_each_file_once_and_clip_digests_reuse_it(tmp_path, monkeypatch):
    """Plan Bn2: the checksum reads each file once (`sha256_file` per file, counted), keeps the digests,
    and `clip_digest` builds the GT cache's frames key from them, byte-identical to the key the GT
    cache computes by reading the clip (plan risk 5), without reading any file again."""
    import vcbench.hashing
    from vcbench.metrics import gt_cache

    calls: list[Path] = []
    real = vcbench.hashing.sha256_file
    monkeypatch.setattr(base, "sha256_file", lambda p: calls.append(Path(p)) or real(p))
    b = B.load_benchmark("sample", reference="exemplar", cache_dir=tmp_path, options={"frames": 3, "width": 64})
    files = [p for c in b.clips for p in c.frame_paths()] + [b.exemplars[c.name][0] for c in b.clips]
    assert len(files) == 3 * 3 + 3 and sorted(calls) == sorted(files)  # each file exactly once
    assert b.file_digests == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    keys = [b.clip_digest(c) for c in b.clips]
    assert len(calls) == len(files)  # no file hashed again
    assert keys == [gt_cache.clip_digest(c) for c in b.clips] and len(set(keys)) == 3
    # a frame added after loading was never hashed: a clear error, not a key of other content
    Image.fromarray(read_image(files[0])).save(b.clips[0].path / "00099.png")
    with pytest.raises(InputError, match="did not hash"):
        b.clip_digest(b.clips[0])


def test_video_clip_digest_from_the_file_digest(tmp_path):
    """A folder of video files: the clip key is `hashing.video_digest` of the file's sha256."""
    import shutil

    import vcbench.hashing

    src = sample_videos()["carphone_pristine"]
    (tmp_path / "clips").mkdir()
    shutil.copy(src, tmp_path / "clips" / "carphone.mp4")
    b = B.load_benchmark(str(tmp_path / "clips"))
    (clip,) = b.clips
    raw = hashlib.sha256(src.read_bytes()).digest()
    assert clip.kind == "video" and b.file_digests == {clip.path: raw.hex()}
    assert b.clip_digest(clip) == vcbench.hashing.video_digest(raw.hex()) == hashlib.sha256(b"video\0" + raw).hexdigest()


def test_sample_bad_options(tmp_path):
    with pytest.raises(InputError, match="unknown option"):
        B.load_benchmark("sample", cache_dir=tmp_path, options={"fps": 3})
    with pytest.raises(InputError, match="unknown sample clip"):
        B.load_benchmark("sample", cache_dir=tmp_path, options={"clips": "foreman"})
    with pytest.raises(InputError, match="reference mode"):
        B.load_benchmark("sample", reference="oracle", cache_dir=tmp_path)


# ------------------------------------------------------------------------------ davis/videvo
def test_lists_ship_with_the_package():
    davis, videvo = base.read_list("davis30_test.txt"), base.read_list("videvo20_test.txt")
    assert len(davis) == 30 and len(videvo) == 20 and "blackswan" in davis and "Cycling" in videvo
    shared = Path("/work/shared/reference")
    if shared.is_dir():
        assert davis == (shared / "davis30_test.txt").read_text().split()
    assert len(B.imagenet_entries()) == 10000


def test_missing_davis_says_what_to_download_and_how_to_point_at_it(tmp_path):
    with pytest.raises(InputError) as err:
        B.load_benchmark("davis30", data_root=tmp_path)
    msg = str(err.value)
    assert lai.LAI_TEST_ZIP_URL in msg and "--data-root" in msg and paths.DATA_ROOT_ENV in msg and "\n" not in msg


def test_davis_local_copy_in_lai_layout(tmp_path, tiny_frames):
    names = base.read_list("davis30_test.txt")
    folder = tmp_path / "test" / "input" / "DAVIS"
    _video_folder(folder, names, tiny_frames)
    b = B.load_benchmark("davis30", data_root=tmp_path)
    assert [c.name for c in b.clips] == names and b.root == folder
    assert all(c.num_frames() == 2 for c in b.clips)
    # the same folder given as a path ranks under the set's name, with the same content checksum
    p = B.load_benchmark(str(folder))
    assert p.name == "davis30" and p.checksum == b.checksum
    # a partial copy names what is missing
    import shutil

    shutil.rmtree(folder / names[3])
    with pytest.raises(InputError, match=f"1 of its 30 videos are missing: {names[3]}"):
        B.load_benchmark("davis30", data_root=tmp_path)


def test_videvo_found_through_the_environment(tmp_path, tiny_frames, monkeypatch):
    _video_folder(tmp_path / "videvo", base.read_list("videvo20_test.txt"), tiny_frames)
    monkeypatch.setenv(paths.DATA_ROOT_ENV, str(tmp_path))
    b = B.load_benchmark("videvo20")
    assert b.n_clips == 20 and B.benchmark_status("videvo20")[0]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def test_download_videvo_from_a_local_server(tmp_path, tiny_frames, monkeypatch):
    """`datasets download` fetches Lai's zip (here served from 127.0.0.1), records its sha256 and unpacks it."""
    served = tmp_path / "served"
    staging = tmp_path / "staging"
    _video_folder(staging / "test" / "input" / "videvo", base.read_list("videvo20_test.txt"), tiny_frames)
    served.mkdir()
    with zipfile.ZipFile(served / "test.zip", "w") as zf:
        for p in sorted(staging.rglob("*.jpg")):
            zf.write(p, p.relative_to(staging).as_posix())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr(lai, "LAI_TEST_ZIP_URL", f"http://127.0.0.1:{server.server_address[1]}/test.zip")
        monkeypatch.delenv("VCBENCH_OFFLINE", raising=False)
        root = tmp_path / "data"
        import vcbench.download as D
        import vcbench.hashing

        hashed: list[str] = []

        def counting(path):
            hashed.append(Path(path).name)
            return vcbench.hashing.sha256_file(path)

        monkeypatch.setattr(D, "sha256_file", counting)
        monkeypatch.setattr(base, "sha256_file", counting)
        folder = B.download_benchmark("videvo20", root, quiet=True)
    finally:
        server.shutdown()
        thread.join()
    assert folder == root / "test" / "input" / "videvo"
    digest = hashlib.sha256((served / "test.zip").read_bytes()).hexdigest()
    assert (root / "test.zip.sha256").read_text().split()[0] == digest
    assert len([n for n in hashed if n.startswith("test.zip")]) == 1  # hashed once, by the download's check
    assert not list(root.glob(".test.zip.sha256.*"))  # written atomically, nothing left behind
    assert B.load_benchmark("videvo20", data_root=root).n_clips == 20


# ---------------------------------------------------------------------------------- imagenet
def test_imagenet_ctest10k_with_labels(tmp_path, tiny_frames):
    entries = B.imagenet_entries()[:3]
    for (synset, fname, _), frame in zip(entries, tiny_frames):
        (tmp_path / synset).mkdir()
        Image.fromarray(frame).save(tmp_path / synset / fname, format="JPEG")
    b = B.load_benchmark("imagenet-ctest10k", data_root=tmp_path, options={"limit": 3})
    assert [c.name for c in b.clips] == [Path(f).stem for _, f, _ in entries]
    assert b.labels == {Path(f).stem: label for _, f, label in entries}
    assert all(c.num_frames() == 1 for c in b.clips)
    frame = next(iter(b.clips[0].iter_frames()))
    assert frame.shape == (16, 20, 3)
    # flat layout (all val images in one folder) works too, with the same content
    flat = tmp_path / "flat"
    flat.mkdir()
    for synset, fname, _ in entries:
        (flat / fname).write_bytes((tmp_path / synset / fname).read_bytes())
    assert B.load_benchmark("imagenet-ctest10k", data_root=flat, options={"limit": 3}).checksum != ""
    with pytest.raises(InputError, match="image-net.org"):
        B.load_benchmark("imagenet-ctest10k", data_root=tmp_path, options={"limit": 4})


# ---------------------------------------------------------------------------------- folders
def test_folder_dataset_with_exemplars(tmp_path, tiny_frames):
    clips = tmp_path / "clips"
    _video_folder(clips, ["a", "b"], tiny_frames, ext="png")
    ex = tmp_path / "ex"
    ex.mkdir()
    Image.fromarray(tiny_frames[2]).save(ex / "a.png")
    with pytest.raises(InputError, match="no exemplar image for 1 clip"):
        B.load_benchmark(str(clips), reference="exemplar", exemplars=ex)
    (ex / "b").mkdir()
    Image.fromarray(tiny_frames[1]).save(ex / "b" / "0.png")
    b = B.load_benchmark(str(clips), reference="exemplar", exemplars=ex)
    assert b.name == "folder:clips" and b.reference_mode == "exemplar"
    assert np.array_equal(b.references(b.clips[1])[0], tiny_frames[1])
    with pytest.raises(InputError, match="unknown dataset"):
        B.load_benchmark(str(tmp_path / "nope"))


def test_datasets_list_cli(tmp_path, capsys, monkeypatch):
    from vcbench.cli import main

    monkeypatch.setenv(paths.DATA_ROOT_ENV, str(tmp_path))
    assert main(["datasets", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["sample"]["available"] is True
    assert rows["davis30"]["available"] is False and lai.LAI_TEST_ZIP_URL in rows["davis30"]["location"]
    assert set(rows) == {"sample", "davis30", "videvo20", "imagenet-ctest10k"}


def test_benchmark_rebuilt_from_a_run_protocol(tmp_path, tiny_frames):
    b = B.load_benchmark("sample", reference="exemplar", cache_dir=tmp_path,
                         options={"frames": 2, "width": 40, "clips": "carphone"})
    again = B.benchmark_from_protocol(json.loads(json.dumps(b.protocol)), cache_dir=tmp_path)
    assert again.checksum == b.checksum and again.reference_mode == "exemplar" and again.protocol == b.protocol
    clips = tmp_path / "clips"
    _video_folder(clips, ["a"], tiny_frames, ext="png")
    f = B.load_benchmark(str(clips))
    assert B.benchmark_from_protocol(f.protocol).checksum == f.checksum
