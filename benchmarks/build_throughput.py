"""Throughput of build-dataset's extraction + augmentation (flow and references excluded), per core,
from 1 to 2 workers, against a bare decode + re-encode of the same frames.

    python benchmarks/build_throughput.py [--videos DIR] [--size 216x384] [--length 25] [--variants 2]

The bare baseline decodes every frame of the same videos once (PyAV, as the pipeline does), resizes
each kept frame to the clip size and JPEG-encodes it with the shard's settings (quality 95, 4:4:4) as
many times as the pipeline writes it; nothing else. The pipeline figure is a full
`build_dataset(--flow none --features none)` run into a fresh folder, start-up of worker processes
included: source listing, shot detection, filters, the extraction cache, augmentation, shard
writing, manifests and stats. Wall seconds are reported for every run, CPU seconds (the fairer
figure on a shared machine) for the bare loop and the in-process 1-worker run only: pool workers are
children of the fork server, not of this process. Target: within 3x of the bare time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (worker pools), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bare_decode_encode(videos: list[Path], out: Path, height: int, width: int,
                       repeats_per_frame: float) -> tuple[float, float, int]:
    """(wall s, CPU s, files): decode all frames, resize them, JPEG-encode and write each
    `repeats_per_frame` times on average (as many frames as the pipeline writes)."""
    import cv2

    from vcbench.trainset.clips import resize_fill
    from vcbench.trainset.shards import encode_image
    from vcbench.frames import Clip

    cv2.setNumThreads(1)
    out.mkdir(parents=True)
    t0, c0 = time.perf_counter(), cpu_seconds()
    n_enc = 0
    debt = 0.0
    for v in videos:
        for frame in Clip(v.stem, v, "video").iter_frames():
            small = resize_fill(frame, height, width)
            debt += repeats_per_frame
            while debt >= 1.0:
                (out / f"{n_enc:06d}.jpg").write_bytes(encode_image(small, "jpg"))
                n_enc += 1
                debt -= 1.0
    return time.perf_counter() - t0, cpu_seconds() - c0, n_enc


def run_pipeline(videos_dir: Path, out: Path, *, clips: int, height: int, width: int, length: int,
                 workers: int) -> tuple[float, float]:
    from vcbench.trainset.clips import ClipSpec
    from vcbench.trainset.config import BuildConfig, RunOptions
    from vcbench.trainset.run import build_dataset

    cfg = BuildConfig(source="local", clips=clips, spec=ClipSpec(length=length, height=height, width=width),
                      flow="none", features="none", pseudo_fraction=0.0, shard_size=max(1, clips // (4 * workers)),
                      input=str(videos_dir))
    t0, c0 = time.perf_counter(), cpu_seconds()
    build_dataset(cfg, out, RunOptions(workers=workers, quiet=True))
    return time.perf_counter() - t0, cpu_seconds() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=None, help="folder of videos (default: the bundled sample videos)")
    ap.add_argument("--size", default="216x384")
    ap.add_argument("--length", type=int, default=25)
    ap.add_argument("--variants", type=int, default=2, help="output clips per base clip (1 = no augmentation)")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="vcbench-bench-"))
    try:
        if args.videos is None:
            from vcbench.trainset.sources import resolve_source
            from vcbench.trainset.sources.base import SourceOptions

            src = tmp / "videos"
            src.mkdir()
            for v in resolve_source("sample", SourceOptions(download_dir=tmp)).videos:
                shutil.copyfile(v.path, src / f"{v.video_id}{v.path.suffix}")
        else:
            src = args.videos
        videos = sorted(p for p in src.iterdir() if p.is_file())
        # a first build with one worker counts the base clips (and warms the file cache)
        probe = tmp / "probe"
        run_pipeline(src, probe, clips=1, height=h, width=w, length=args.length, workers=1)
        import pyarrow.parquet as pq

        cand = pq.read_table(probe / "candidates.parquet").to_pandas()
        n_base = int(cand["accepted"].sum())
        clips = n_base * args.variants
        out_frames = clips * args.length
        from vcbench.frames import Clip

        total_src_frames = sum(1 for v in videos for _ in Clip(v.stem, v, "video").iter_frames())
        bare_s, bare_cpu, n_enc = bare_decode_encode(videos, tmp / "bare", h, w, out_frames / total_src_frames)
        results = {"videos": [v.name for v in videos], "source_frames": total_src_frames, "base_clips": n_base,
                   "clips": clips, "clip_frames": out_frames, "size": args.size, "cpu_count": os.cpu_count(),
                   "load_average": [round(x, 2) for x in os.getloadavg()],
                   "bare": {"wall_s": round(bare_s, 3), "cpu_s": round(bare_cpu, 3), "frames_written": n_enc},
                   "pipeline": {}}
        for wk in (int(x) for x in args.workers.split(",")):
            secs, cpu = run_pipeline(src, tmp / f"w{wk}", clips=clips, height=h, width=w, length=args.length, workers=wk)
            row = {"wall_s": round(secs, 3), "clips_per_s": round(clips / secs, 3),
                   "clips_per_s_per_core": round(clips / secs / wk, 3), "wall_ratio_to_bare": round(secs / bare_s, 2)}
            if wk == 1:  # in-process: its CPU time is ours (pool workers are the fork server's children)
                row.update(cpu_s=round(cpu, 3), clips_per_cpu_s=round(clips / cpu, 3), cpu_ratio_to_bare=round(cpu / bare_cpu, 2))
            results["pipeline"][wk] = row
        one = results["pipeline"].get(1)
        if one and 2 in results["pipeline"]:
            results["speedup_1_to_2"] = round(one["wall_s"] / results["pipeline"][2]["wall_s"], 2)
        print(json.dumps(results, indent=1))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
