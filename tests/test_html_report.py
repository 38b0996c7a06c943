"""The HTML report: structure, and what headless Chromium actually renders (DOM and a screenshot)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from report_fixtures import build_db, run_cli
from test_plots import PLOT_CLIPS, _frames
from vcbench.frames import read_image, write_frames
from vcbench.reports.html import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    db = build_db(tmp / "r.sqlite", clips=PLOT_CLIPS)
    gt, frames_root = _frames(), tmp / "saved"
    write_frames(tmp / "gt" / "bear", gt)
    write_frames(frames_root / "devc" / "bear", np.clip(gt.astype(int) + 25, 0, 255).astype(np.uint8))
    write_frames(frames_root / "gray" / "bear", np.repeat(gt.mean(3, keepdims=True), 3, 3).astype(np.uint8))
    rc, out, err = run_cli(["report", "--db", str(db.path), "--out", str(tmp / "site"), "--frames", str(frames_root),
                            "--gt", str(tmp / "gt"), "--resamples", "500"], ["report"])
    assert rc == 0, err
    page = Path(out.strip())
    assert page == tmp / "site" / "index.html"
    return page


def test_page_structure(report):
    text = report.read_text(encoding="utf-8")
    p = _Collect()
    p.feed(text)
    tags = [t for t, _ in p.tags]
    assert "script" not in tags and not re.search(r"https?://", text)  # self-contained, no JS
    imgs = [a["src"] for t, a in p.tags if t == "img"]
    assert imgs and all((report.parent / s).is_file() for s in imgs)  # relative, existing PNGs
    assert any("strip_sample_vcbench-v1-dis_bear.png" in s for s in imgs)
    assert any(s.startswith("plots/curves_") for s in imgs) and any(s.startswith("plots/speed_") for s in imgs)
    # two leaderboards (dis, raft), each followed by its per-clip table and its runs table
    assert text.count('class="leaderboard"') == 2 and text.count('class="clips"') == 2 and text.count('class="runs"') == 2
    assert "<strong>" in text and "<sup>†</sup>" in text


def test_embedded_single_file(tmp_path):
    db = build_db(tmp_path / "r.sqlite", clips=PLOT_CLIPS[:2])
    page = build_report(db, tmp_path / "site", protocol="vcbench-v1/raft", embed=True, n_resamples=300)
    text = page.read_text(encoding="utf-8")
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "vcbench-v1/dis" not in text


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@needs_chromium
def test_chromium_renders_tables_and_images(report, tmp_path):
    res = _chromium(["--dump-dom", report.as_uri()], tmp_path)
    dom = res.stdout
    assert res.returncode == 0 and "<table" in dom, res.stderr[-2000:]
    assert dom.count('class="leaderboard"') == 2
    assert re.search(r"<th[^>]*>psnr ↑</th>", dom) and "devc" in dom
    assert len(re.findall(r"<img ", dom)) == len(re.findall(r"<img ", report.read_text(encoding="utf-8")))
    shot = tmp_path / "shot.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1400,1800", "--hide-scrollbars", report.as_uri()],
                    tmp_path)
    assert shot.is_file(), res.stderr[-2000:]
    img = read_image(shot).astype(np.float64)
    assert img.shape[:2] == (1800, 1400)
    assert img.var() > 200  # not a blank page
    # the bar charts' dark blue (best) bars are on the page, i.e. the images were loaded and drawn
    dark_blue = (np.abs(img[..., 0] - 0x1F) < 12) & (np.abs(img[..., 1] - 0x4E) < 12) & (np.abs(img[..., 2] - 0x79) < 12)
    assert dark_blue.sum() > 500
