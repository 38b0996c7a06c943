"""The `videvo` source: a CSV the user provides, one row per clip.

No public list of DEVC's 1052 Videvo clips exists and each Videvo clip carries its own licence, so the
user supplies the list (`--urls clips.csv`). Columns (header required, case-insensitive):

- `url`: where to download the clip (http/https), or
- `id`: a clip id; with no `url`, the file `<--input>/<id>.<ext>` (already downloaded) is used;
- `licence` (or `license`): the clip's licence, recorded per clip in the manifest (required);
- `origin`: the page the clip came from (defaults to the url);
- `sha256`: optional published checksum, verified when present.

Dead links are logged in the build's failures file and skipped.
"""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import unquote, urlparse

from vcbench.trainset.sources.base import Failure, SourceOptions, SourceResult, SourceVideo
from vcbench.trainset.sources.fetch import Fetcher, FetchItem
from vcbench.errors import InputError
from vcbench.frames import VIDEO_EXTENSIONS
from vcbench.ids import safe_id


def read_clip_list(path: Path) -> list[dict[str, str]]:
    """Rows of the user's CSV with normalised keys; `InputError` naming the file for a bad list."""
    if not path.is_file():
        raise InputError("clip list not found", path=path, hint="give --urls a CSV with url/id, licence and origin columns")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise InputError("clip list is empty", path=path, hint="add a header row: url,id,licence,origin")
        keys = {k.strip().lower(): k for k in reader.fieldnames if k}
        if "license" in keys and "licence" not in keys:
            keys["licence"] = keys["license"]
        if "licence" not in keys or not ({"url", "id"} & keys.keys()):
            raise InputError(f"clip list needs a 'licence' column and a 'url' or 'id' column (found: {', '.join(keys)})",
                             path=path, hint="record each clip's licence; Videvo licences differ per clip")
        rows = []
        for n, raw in enumerate(reader, start=2):
            row = {k: (raw.get(orig) or "").strip() for k, orig in keys.items()}
            if not row.get("url") and not row.get("id"):
                raise InputError(f"line {n} has neither url nor id", path=path, hint="fill one of them or delete the line")
            if not row.get("licence"):
                raise InputError(f"line {n} has no licence", path=path, hint="record the clip's licence (e.g. 'Videvo Standard License')")
            rows.append(row)
    if not rows:
        raise InputError("clip list holds no clips", path=path, hint="add one row per clip")
    return rows


def _suffix(url: str) -> str:
    ext = Path(unquote(urlparse(url).path)).suffix.lower()
    return ext if ext in VIDEO_EXTENSIONS else ".mp4"


def videvo_source(opts: SourceOptions) -> SourceResult:
    if opts.urls is None:
        raise InputError("--source videvo needs --urls CLIPS.csv (no public list of DEVC's Videvo clips exists)",
                         hint="write a CSV with url (or id), licence and origin columns")
    rows = read_clip_list(opts.urls)
    fetcher = Fetcher(opts.download_dir / "videvo", min_interval_s=opts.min_interval_s, retries=opts.retries, quiet=opts.quiet)
    result = SourceResult()
    seen: set[str] = set()
    for row in rows:
        url = row.get("url", "")
        vid = safe_id(row.get("id") or Path(unquote(urlparse(url).path)).stem)
        if vid in seen:
            result.failures.append(Failure(vid, url, "duplicate clip id in the list; later row skipped"))
            continue
        seen.add(vid)
        origin = row.get("origin") or url or f"videvo id {vid}"
        if url:
            got = fetcher.fetch(FetchItem(vid, url, fetcher.download_dir / f"{vid}{_suffix(url)}", sha256=row.get("sha256") or None))
            if isinstance(got, Failure):
                result.failures.append(got)
                continue
            path = got
        else:
            local = [p for p in sorted((opts.input or Path("/nonexistent")).glob(f"{vid}.*")) if p.suffix.lower() in VIDEO_EXTENSIONS]
            if not local:
                result.failures.append(Failure(vid, "", f"no url and no file {vid}.<ext> in --input"))
                continue
            path = local[0]
        result.videos.append(SourceVideo(vid, path, "videvo", row["licence"], origin))
    return result
