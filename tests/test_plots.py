"""Figures from a results database of plain RunRecords, and frame strips from real saved frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from report_fixtures import build_db, run_cli

PLOT_CLIPS = ("bear", "boat", "camel")
from vcbench.frames import list_clips, read_image, write_frames
from vcbench.reports.leaderboard import build_tables
from vcbench.reports.plots import FrameSources, bar_chart, clip_curves, frame_strip, make_plots, png_variance, strip_indices


def _frames(n: int = 6) -> np.ndarray:
    """n real frames: a window panning over scikit-image's astronaut, 64x96."""
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut(), (192, 192), interpolation=cv2.INTER_AREA)
    return np.stack([img[40 + 4 * i:104 + 4 * i, 20 + 6 * i:116 + 6 * i] for i in range(n)])


@pytest.fixture
def saved(tmp_path):
    """GT clips and what `vcbench evaluate --save-frames` would have written for two models."""
    gt = _frames()
    gt_root, frames_root = tmp_path / "gt", tmp_path / "saved"
    for clip in ("bear", "camel"):
        write_frames(gt_root / clip, gt)
        gray = np.repeat(gt.mean(axis=3, keepdims=True), 3, axis=3).astype(np.uint8)
        write_frames(frames_root / "gray" / clip, gray)
        write_frames(frames_root / "devc" / clip, np.clip(gt.astype(int) + 20, 0, 255).astype(np.uint8))
    return gt_root, frames_root


def test_all_figures_written_with_stable_names(tmp_path, saved):
    gt_root, frames_root = saved
    db = build_db(tmp_path / "r.sqlite", clips=PLOT_CLIPS)
    files = make_plots(db, tmp_path / "plots", protocol="vcbench-v1/dis", frames=frames_root, gt_root=gt_root,
                       n_resamples=500)
    t = "sample_vcbench-v1-dis"
    expected = [f"bar_{t}_{m}.png" for m in ("psnr", "lpips", "colorfulness", "fid", "flicker")]
    expected += [f"speed_{t}_psnr.png", f"speed_{t}_lpips.png"]
    expected += [f"curves_{t}_{clip}.png" for clip in PLOT_CLIPS]
    expected += [f"strip_{t}_bear.png", f"strip_{t}_camel.png"]  # strips only where frames were saved
    assert [f.path.name for f in files] == expected
    assert [f.kind for f in files] == ["bar"] * 5 + ["speed"] * 2 + ["curves"] * 3 + ["strip"] * 2
    for f in files:
        assert f.path.is_file() and png_variance(f.path) > 50, f.path  # not blank
        assert f.table == t
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(expected)  # no temporary files left
    # deterministic: same inputs, same bytes
    (table,) = build_tables(db.runs(protocol="vcbench-v1/dis"), n_resamples=500)
    runs = [db.get(r.run_id) for r in table.rows]
    gt_clips = {c.name: c for c in list_clips(gt_root)}
    again = [bar_chart(table, "psnr", tmp_path / "again"), clip_curves(table, runs, "bear", tmp_path / "again"),
             frame_strip(table, "bear", frames_root, gt_clips, tmp_path / "again")]
    first = {f.path.name: f.path.read_bytes() for f in files}
    assert all(first[f.path.name] == f.path.read_bytes() for f in again)


def test_strip_shows_gt_and_each_model(tmp_path, saved):
    gt_root, frames_root = saved
    db = build_db(tmp_path / "r.sqlite", clips=PLOT_CLIPS)
    (table, _) = build_tables(db.runs(), n_resamples=500)
    gt_clips = {c.name: c for c in list_clips(gt_root)}
    with_gt = {"strip_sample_vcbench-v1-dis_bear.png": frame_strip(table, "bear", frames_root, gt_clips, tmp_path / "a")}
    no_gt = {"strip_sample_vcbench-v1-dis_bear.png": frame_strip(table, "bear", frames_root, {}, tmp_path / "b")}
    assert frame_strip(table, "boat", frames_root, gt_clips, tmp_path / "c") is None  # nothing saved for boat
    name = "strip_sample_vcbench-v1-dis_bear.png"
    a, b = read_image(with_gt[name].path), read_image(no_gt[name].path)
    assert a.shape[1] == b.shape[1] and a.shape[0] > b.shape[0] * 1.3  # three rows (GT, devc, gray) vs two
    assert with_gt[name].caption == "clip bear: GT, then each model, frames 1, 2, 4, 5"
    # the strip holds the gray model's frames: a colourless block exists, and the GT's colours too
    hsv_sat = a.max(axis=2).astype(int) - a.min(axis=2).astype(int)
    assert (hsv_sat > 60).mean() > 0.05


def test_strip_indices():
    assert strip_indices(6) == [1, 2, 4, 5]
    assert strip_indices(2) == [1]
    assert strip_indices(1) == [0] and strip_indices(0) == []
    assert strip_indices(100) == [25, 50, 74, 99]


def test_plot_cli(tmp_path, saved):
    gt_root, frames_root = saved
    db = build_db(tmp_path / "r.sqlite", clips=PLOT_CLIPS)
    out = tmp_path / "figs"
    rc, stdout, err = run_cli(["plot", "--db", str(db.path), "--out", str(out), "--protocol", "vcbench-v1/raft",
                               "--frames", str(frames_root), "--gt", str(gt_root), "--resamples", "500"], ["plot"])
    assert rc == 0, err
    listed = [Path(p).name for p in stdout.split()]
    assert sorted(listed) == sorted(p.name for p in out.iterdir())
    assert all("raft" in n for n in listed) and "strip_sample_vcbench-v1-raft_bear.png" in listed
    assert "hint" not in err
    rc, _, err = run_cli(["plot", "--db", str(db.path), "--out", str(tmp_path / "nostrips"), "--protocol",
                          "vcbench-v1/raft", "--resamples", "100"], ["plot"])
    assert rc == 0 and "--save-frames DIR" in err and "--frames DIR" in err  # how to get the strips
    assert not list((tmp_path / "nostrips").glob("strip_*"))
    rc, _, err = run_cli(["plot", "--db", str(db.path), "--out", str(out), "--frames", str(tmp_path / "nope")], ["plot"])
    assert rc == 2 and "saved-frames folder not found" in err


def test_frame_sources_accept_model_folders(tmp_path, saved):
    """`--frames MODEL=DIR` points at one run's --save-frames folder (DIR/<clip>/...)."""
    gt_root, frames_root = saved
    db = build_db(tmp_path / "r.sqlite", clips=PLOT_CLIPS)
    (table, _) = build_tables(db.runs(), n_resamples=300)
    gt_clips = {c.name: c for c in list_clips(gt_root)}
    src = FrameSources.parse([f"gray={frames_root / 'gray'}"])
    assert src.models == (("gray", frames_root / "gray"),) and not src.roots
    pf = frame_strip(table, "bear", src, gt_clips, tmp_path / "x")
    assert pf is not None and pf.caption.startswith("clip bear: GT, then each model")
    both = frame_strip(table, "bear", FrameSources.parse([frames_root]), gt_clips, tmp_path / "y")
    assert read_image(both.path).shape[0] > read_image(pf.path).shape[0]  # GT+devc+gray vs GT+gray
