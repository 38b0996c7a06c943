"""The `hollywood2` and `hollywood3d` sources: official archives, checksummed, safely extracted.

Hollywood2 (Marszalek, Laptev & Schmid, CVPR 2009; INRIA): the authors publish two archives on the
IRISA FTP server with their md5 sums (dataset README). DEVC's authors say they trained on Hollywood2;
the actions archive holds the clips (`Hollywood2/AVIClips/*.avi`), so it is the default.

Hollywood 3D (Hadfield & Bowden, CVPR 2013; CVSSP, University of Surrey) is distributed from its
project page, http://cvssp.org/Hollywood3D/ , whose archive links we could not confirm from here;
give the archive URL(s) you get from that page with `--urls` (a CSV with a `url` column and
optionally `sha256`), or the downloaded archive or its extracted folder with `--input`. Where no
checksum is published, the sha256 of what was downloaded is recorded in `checksums.json`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from vcbench.trainset.sources.base import Failure, SourceOptions, SourceResult, SourceVideo
from vcbench.trainset.sources.fetch import Fetcher, FetchItem
from vcbench.download import safe_extract
from vcbench.errors import InputError
from vcbench.frames import VIDEO_EXTENSIONS, natural_key
from vcbench.ids import safe_id

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".tar.bz2", ".tar.xz")


@dataclass(frozen=True)
class Archive:
    url: str
    md5: str | None = None
    sha256: str | None = None


HOLLYWOOD2_ARCHIVES: dict[str, Archive] = {
    # md5 sums as published in the dataset's README (approx. 15 GB and 25 GB).
    "actions": Archive("ftp://ftp.irisa.fr/local/vistas/actions/Hollywood2-actions.tar.gz", md5="55948d0ef45a569a2134ea44e6f8976c"),
    "scenes": Archive("ftp://ftp.irisa.fr/local/vistas/actions/Hollywood2-scenes.tar.gz", md5="b77f9ffe18ad5ea04957bb4c7725f5ce"),
}
HOLLYWOOD3D_PAGE = "http://cvssp.org/Hollywood3D/"

_LICENCE = {
    "hollywood2": "Hollywood2 research-use terms (INRIA); clips are excerpts of commercial films, copyright of their owners",
    "hollywood3d": "Hollywood 3D research-use terms (CVSSP, University of Surrey); excerpts of commercial 3D films",
}


def _is_archive(p: Path) -> bool:
    return p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract_once(archive: Path, dest: Path) -> Path:
    """Extract `archive` into `dest` with `safe_extract` (no member may escape `dest`), through a
    temporary folder renamed at the end, so a killed extraction is redone rather than half-used."""
    if dest.is_dir():
        return dest
    tmp = dest.with_name(f".{dest.name}.extracting")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        safe_extract(archive, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, dest)
    return dest


def _videos_under(root: Path) -> list[Path]:
    return sorted((p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
                   and not any(part.startswith(".") for part in p.relative_to(root).parts)),
                  key=lambda p: natural_key(str(p.relative_to(root))))


def _archives_from_urls(opts: SourceOptions) -> list[Archive]:
    import csv

    if opts.urls is None:
        return []
    if not opts.urls.is_file():
        raise InputError("archive list not found", path=opts.urls, hint="give --urls a CSV with a url column")
    with open(opts.urls, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if row.get("url"):
            out.append(Archive(row["url"], md5=row.get("md5") or None, sha256=row.get("sha256") or None))
    if not out:
        raise InputError("archive list has no url rows", path=opts.urls, hint="add a header 'url' and one archive URL per line")
    return out


def hollywood_source(name: str, opts: SourceOptions) -> SourceResult:
    result = SourceResult()
    root = opts.download_dir / name
    roots: list[Path] = []
    if opts.input is not None:
        if opts.input.is_dir():
            archives = sorted(p for p in opts.input.iterdir() if _is_archive(p))
            roots.append(opts.input)
            for a in archives:
                roots.append(extract_once(a, root / f"extracted-{safe_id(a.name)}"))
        elif _is_archive(opts.input):
            roots.append(extract_once(opts.input, root / f"extracted-{safe_id(opts.input.name)}"))
        else:
            raise InputError(f"--input for {name} must be the downloaded archive or its extracted folder", path=opts.input)
    else:
        archives = _archives_from_urls(opts)
        if not archives:
            if name == "hollywood3d":
                raise InputError(f"hollywood3d archives are obtained from {HOLLYWOOD3D_PAGE}",
                                 hint="pass their URLs with --urls LIST.csv (column url) or the downloaded archive with --input")
            archives = [HOLLYWOOD2_ARCHIVES["actions"]]
        fetcher = Fetcher(root, min_interval_s=opts.min_interval_s, retries=opts.retries, quiet=opts.quiet)
        for arc in archives:
            fname = Path(unquote(urlparse(arc.url).path)).name or "archive.tar.gz"
            got = fetcher.fetch(FetchItem(fname, arc.url, root / fname, sha256=arc.sha256, md5=arc.md5))
            if isinstance(got, Failure):
                result.failures.append(got)
                continue
            try:
                roots.append(extract_once(got, root / f"extracted-{safe_id(fname)}"))
            except InputError as exc:  # corrupt or hostile archive: logged, skipped
                result.failures.append(Failure(fname, arc.url, str(exc)))
    seen: set[str] = set()
    for r in roots:
        for p in _videos_under(r):
            vid = safe_id(p.stem)
            if vid in seen:
                continue
            seen.add(vid)
            result.videos.append(SourceVideo(vid, p, name, _LICENCE[name], f"{name}:{p.relative_to(r)}"))
    if not result.videos and not result.failures:
        raise InputError(f"no video files found for {name}", path=opts.input or root,
                         hint="check the archive; the clips should be .avi/.mp4 files")
    return result


def hollywood2_source(opts: SourceOptions) -> SourceResult:
    return hollywood_source("hollywood2", opts)


def hollywood3d_source(opts: SourceOptions) -> SourceResult:
    return hollywood_source("hollywood3d", opts)
