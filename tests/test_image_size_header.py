"""`frames.image_size` reads a PNG's size and EXIF orientation from its chunk headers, not its pixels.

Pillow's `getexif()` on a PNG decodes the whole image (the eXIf chunk may follow the pixel data), and
`pair_clips` asks for the size of each clip's first frame on both sides, every image of an image set.
The size must stay what `read_image` returns, wherever the eXIf chunk sits.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from skimage import data

from vcbench.frames import image_size, read_image


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        out.append((png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
                    for k, d in chunks)
    return b"\x89PNG\r\n\x1a\n" + body


def _oriented_png(orientation: int | None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(data.chelsea()).save(buf, format="PNG", exif=exif if orientation is not None else None)
    return buf.getvalue()


@pytest.fixture
def loads(monkeypatch) -> list[int]:
    """Counts Pillow's pixel decodes (ImageFile.load) made while the test runs."""
    calls: list[int] = []
    real = ImageFile.ImageFile.load

    def counted(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counted)
    return calls


def test_a_png_without_exif_is_sized_from_its_header(tmp_path: Path, loads):
    path = tmp_path / "plain.png"
    path.write_bytes(_oriented_png(None))
    loads.clear()  # skimage's chelsea() is a decoded PNG itself
    assert image_size(path) == (300, 451)
    assert loads == []  # the pixels were never decoded
    assert read_image(path).shape[:2] == (300, 451)


def test_exif_before_the_pixels_is_read_from_the_header(tmp_path: Path, loads):
    path = tmp_path / "before.png"
    png = _oriented_png(6)
    kinds = [k for k, _ in _chunks(png)]
    assert kinds.index(b"eXIf") < kinds.index(b"IDAT")  # where Pillow writes it
    path.write_bytes(png)
    loads.clear()
    assert image_size(path) == (451, 300)  # orientation 6 turns the image by 90 degrees
    assert loads == []
    assert read_image(path).shape[:2] == (451, 300)


def test_exif_after_the_pixels_still_turns_the_size(tmp_path: Path):
    chunks = _chunks(_oriented_png(6))
    exif = [c for c in chunks if c[0] == b"eXIf"]
    rest = [c for c in chunks if c[0] != b"eXIf"]
    moved = rest[:-1] + exif + rest[-1:]  # eXIf between the last IDAT and IEND
    path = tmp_path / "after.png"
    path.write_bytes(_png(moved))
    with Image.open(path) as im:
        assert "exif" not in im.info  # Pillow cannot know it from the header
    assert image_size(path) == (451, 300) == read_image(path).shape[:2]


def test_a_truncated_png_is_still_sized_as_pillow_sizes_it(tmp_path: Path):
    png = _oriented_png(None)
    path = tmp_path / "cut.png"
    path.write_bytes(png[: len(png) // 2])  # the chunk walk meets no IEND: Pillow is asked, as before
    assert image_size(path) == (300, 451)
    assert np.asarray(Image.open(io.BytesIO(png))).shape[:2] == (300, 451)
