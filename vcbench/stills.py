"""Still images for pseudo-video: scikit-image's colour photographs offline, or any image folder
(an ImageNet train folder, as DEVC used)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vcbench.errors import InputError
from vcbench.frames import IMAGE_EXTENSIONS, natural_key, read_image
from vcbench.ids import safe_id

# Colour photographs that scikit-image ships inside its wheel (no pooch download needed).
SKIMAGE_STILLS: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left")  # cat() is chelsea again


@dataclass(frozen=True)
class Still:
    still_id: str
    origin: str  # "skimage:<name>" or an absolute file path

    def load(self) -> np.ndarray:
        if self.origin.startswith("skimage:"):
            return load_skimage_still(self.origin.split(":", 1)[1])
        return read_image(self.origin)


def load_skimage_still(name: str) -> np.ndarray:
    import skimage.data as data

    if name == "motorcycle_left":
        img = data.stereo_motorcycle()[0]
    else:
        img = getattr(data, name)()
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] < 3:
        raise InputError(f"scikit-image still {name!r} is not an RGB image")
    return np.ascontiguousarray(img[..., :3].astype(np.uint8))


def list_stills(folder: Path | None) -> list[Still]:
    """The stills of `folder` (recursively, natural order), or scikit-image's when folder is None."""
    if folder is None:
        return [Still(n, f"skimage:{n}") for n in SKIMAGE_STILLS]
    if not folder.is_dir():
        raise InputError("stills folder not found", path=folder, hint="point --stills at a folder of images (e.g. ImageNet train)")
    files = sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                   key=lambda p: natural_key(str(p.relative_to(folder))))
    if not files:
        raise InputError("no images found", path=folder, hint="the folder should hold .jpg/.png/.JPEG images")
    return [Still(safe_id(p.stem), str(p.resolve())) for p in files]
