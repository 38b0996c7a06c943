"""The `local` source: every video file under a folder (`--input DIR`), recursively, natural order."""

from __future__ import annotations

from vcbench.trainset.sources.base import SourceOptions, SourceResult, SourceVideo
from vcbench.errors import InputError
from vcbench.frames import VIDEO_EXTENSIONS, natural_key
from vcbench.ids import safe_id


def local_source(opts: SourceOptions, *, source: str = "local", licence: str = "unknown (user-provided)") -> SourceResult:
    root = opts.input
    if root is None:
        raise InputError("--source local needs --input DIR, a folder of videos", hint="add --input /path/to/videos")
    if not root.is_dir():
        raise InputError("input folder not found", path=root, hint="point --input at a folder of video files")
    files = sorted((p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
                    and not any(part.startswith(".") for part in p.relative_to(root).parts)),
                   key=lambda p: natural_key(str(p.relative_to(root))))
    if not files:
        raise InputError(f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) found", path=root,
                         hint="put the videos in that folder or choose another --input")
    result = SourceResult()
    seen: dict[str, int] = {}
    for p in files:
        vid = safe_id(str(p.relative_to(root).with_suffix("")).replace("/", "__"))
        if vid in seen:  # two names that sanitise to one id: keep both, deterministically numbered
            seen[vid] += 1
            vid = f"{vid}-{seen[vid]}"
        else:
            seen[vid] = 0
        result.videos.append(SourceVideo(vid, p.resolve(), source, licence, f"file://{p.resolve()}"))
    return result
