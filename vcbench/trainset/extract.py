"""Extraction: one video -> its candidate clips (`run_extract`, a worker task), cached in
work/extract/<video>/ (`vcbench.trainset.layout`), then every video's verdicts gathered into
candidates.parquet (`collect_candidates`).

A video's extraction is written in its writer's private folder and renamed when complete, only
while the build that started it still holds OUT's lock; `candidates.json` present marks it done.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vcbench.atomic import atomic_path, write_bytes, write_errors
from vcbench.errors import InputError
from vcbench.executors import single_threaded
from vcbench.lock import PrivateDir, check_owner
from vcbench.trainset.clips import ClipSpec, extract_clips
from vcbench.trainset.layout import CANDIDATES_JSON, BuildLayout, clip_file
from vcbench.trainset.sources.base import SourceVideo


@dataclass(frozen=True)
class ExtractTask:
    out_root: str
    video: SourceVideo
    spec: ClipSpec
    owner: str | None = None  # token of the build's lock; the result is committed only while it holds


def run_extract(task: ExtractTask) -> dict:
    """Cut one video into candidate clips; cache the accepted ones (raw .npy) and every verdict."""
    final = BuildLayout(task.out_root).extract_dir(task.video.video_id)
    work = PrivateDir(final.parent, final.name)
    tmp = work.path
    rows, error = [], None
    t0 = time.perf_counter()
    try:
        try:
            with single_threaded():
                for cand in extract_clips(task.video, task.spec):
                    row = {"clip_id": cand.clip_id, "video_id": task.video.video_id, "shot": cand.shot,
                           "start_frame": cand.start, "end_frame": cand.end, "accepted": cand.accepted,
                           "reason": cand.reason, **cand.measures}
                    if cand.accepted:
                        npy = tmp / clip_file(cand.clip_id)
                        with write_errors(npy, size=cand.frames.nbytes + 128):  # + the .npy header
                            np.save(npy, cand.frames, allow_pickle=False)
                    rows.append(row)
        except InputError as exc:  # an undecodable video is logged and skipped, not fatal
            error = str(exc)
        write_bytes(tmp / CANDIDATES_JSON, (json.dumps({"video_id": task.video.video_id, "error": error,
                                                          "rows": rows}, sort_keys=True) + "\n").encode())
        check_owner(task.out_root, task.owner, f"extraction of {task.video.video_id}")
        if not work.rename_to(final):  # another writer of this build finished it first: the same bytes
            work.discard()
    except BaseException:
        work.discard()
        raise
    work.release()
    return {"video_id": task.video.video_id, "n": len(rows), "seconds": time.perf_counter() - t0}


def collect_candidates(out: Path, videos: list[SourceVideo], failures: list[dict]) -> list[dict]:
    """Every extracted video's verdicts as candidate rows (with source, licence and origin), written
    to candidates.parquet; a video that could not be decoded is appended to `failures`."""
    layout = BuildLayout(out)
    candidates = []
    for v in videos:
        rec = json.loads(layout.candidates_json(v.video_id).read_text())
        if rec["error"]:
            failures.append({"item": v.video_id, "url": v.origin, "reason": rec["error"], "stage": "extract"})
        for r in rec["rows"]:
            candidates.append(dict(r, source=v.source, licence=v.licence, origin=v.origin))
    cols = ["clip_id", "video_id", "shot", "start_frame", "end_frame", "accepted", "reason", "motion", "chroma",
            "luma", "source", "licence", "origin"]
    table = pa.table({c: [r[c] for r in candidates] for c in cols}) if candidates else \
        pa.table({c: pa.array([], pa.string()) for c in cols})
    with atomic_path(layout.candidates, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return candidates
