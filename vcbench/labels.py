"""Label files: `name class` rows that say which class an image, clip or video belongs to.

`read_label_file` reads the build's `--gallery-labels`/`--clip-labels` (classes as strings);
`read_class_labels` reads score's `--labels` (ImageNet-1k indices, for accuracy instead of agreement).
"""

from __future__ import annotations

import csv
from pathlib import Path

from vcbench.errors import InputError
from vcbench.frames import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

_HEADER_NAMES = {"image", "clip", "id", "name", "file", "path", "video"}
_HEADER_CLASSES = {"class", "label", "category", "synset"}


def read_label_file(path: str | Path, what: str) -> dict[str, str]:
    """{name: class} from a two-column CSV/TSV, or from `name class` lines split at the last blank (the
    ImageNet ctest10k list). The first row that is not a comment decides the separator: a tab, else a
    comma, else blanks."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"{what} file not found", path=path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the {what} file ({exc.__class__.__name__})", path=path,
                         hint="give a UTF-8 CSV or TSV of name,class rows") from exc
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    delimiter = "\t" if "\t" in first else "," if "," in first else None
    rows = csv.reader(lines, delimiter=delimiter) if delimiter else (ln.strip().rsplit(None, 1) for ln in lines)
    out: dict[str, str] = {}
    header_possible = True
    for n, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise InputError(f"line {n} of the {what} file is not `name{delimiter or ' '}class`", path=path,
                             hint="write one name and its class per line")
        name, label = row[0].strip(), row[1].strip()
        if header_possible and name.lower() in _HEADER_NAMES and label.lower() in _HEADER_CLASSES:
            header_possible = False
            continue
        header_possible = False
        if out.get(name, label) != label:
            raise InputError(f"{name!r} is labelled both {out[name]} and {label} in the {what} file", path=path,
                             hint="give each name one class")
        out[name] = label
    if not out:
        raise InputError(f"the {what} file holds no labels", path=path, hint="write one name,class row per line")
    return out


def read_class_labels(path: str | Path) -> dict[str, int]:
    """{clip name: ImageNet-1k class index} from a label file, for accuracy instead of agreement.

    The file is read by `read_label_file`: `path-or-name class` lines (the ctest10k list:
    `/n01440764/ILSVRC2012_val_00000293.JPEG 0`) or `name,class` CSV/TSV. A name is matched by its
    file name without an image/video extension, so list paths pair with the image set's file stems;
    classes must be integers 0..999.
    """
    out: dict[str, int] = {}
    for name, cls in read_label_file(path, "label").items():
        try:
            label = int(cls)
        except ValueError:
            raise InputError(f"class {cls!r} of {name!r} is not an integer", path=path,
                             hint="classes are ImageNet-1k indices 0..999") from None
        if not 0 <= label < 1000:
            raise InputError(f"class {label} of {name!r} is outside ImageNet-1k's 0..999", path=path)
        key = Path(name.replace("\\", "/")).name
        if Path(key).suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
            key = Path(key).stem
        if out.get(key, label) != label:
            raise InputError(f"{key!r} is labelled both {out[key]} and {label}", path=path)
        out[key] = label
    return out
