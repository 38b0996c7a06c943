"""Bad input to `vcbench score`: one line on stderr, non-zero exit, no traceback, no JSON written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import write_video

from vcbench.cli import main
from vcbench.frames import write_frames


@pytest.fixture
def tiny(tmp_path, sample_frames) -> tuple[Path, Path, Path]:
    """(pred_dir, gt_dir, json_path): 3 small real frames per clip; the prediction is the GT blurred."""
    import cv2

    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    for name, frames in sample_frames.items():
        f = np.ascontiguousarray(frames[:3, :32, :48])
        write_frames(gt_dir / name, f)
        write_frames(pred_dir / name, np.stack([cv2.GaussianBlur(x, (0, 0), 1.0) for x in f]))
    return pred_dir, gt_dir, tmp_path / "out" / "scores.json"


def score(pred: Path, gt: Path, out: Path, *extra: str) -> int:
    return main(["score", "--pred", str(pred), "--gt", str(gt), "--metrics", "psnr,ssim", "--json", str(out),
                 "--quiet", "--no-cache", *extra])


def assert_user_error(rc: int, capsys, out: Path, *needles: str) -> str:
    captured = capsys.readouterr()
    err = captured.err
    assert rc != 0
    assert "Traceback" not in err and "Traceback" not in captured.out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("vcbench: error: ")
    for n in needles:
        assert n in lines[0], lines[0]
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary left either
    return lines[0]


def test_clean_input_succeeds(tiny, capsys):
    pred, gt, out = tiny
    assert score(pred, gt, out) == 0
    assert out.is_file()
    assert "psnr" in capsys.readouterr().out


def test_prediction_clip_missing(tiny, capsys):
    pred, gt, out = tiny
    import shutil

    shutil.rmtree(pred / "bikes")
    assert_user_error(score(pred, gt, out), capsys, out, "bikes", "no prediction")


def test_extra_prediction_clip(tiny, capsys):
    pred, gt, out = tiny
    import shutil

    shutil.copytree(pred / "bikes", pred / "surplus")
    assert_user_error(score(pred, gt, out), capsys, out, "surplus", "no GT")


def test_frame_count_mismatch(tiny, capsys):
    pred, gt, out = tiny
    (pred / "bikes" / "00002.png").unlink()
    line = assert_user_error(score(pred, gt, out), capsys, out, "bikes")
    assert "2 predicted frames" in line and "3 GT frames" in line


def test_size_mismatch_is_an_error_and_resize_opts_in(tiny, capsys):
    pred, gt, out = tiny
    import cv2
    import json

    from vcbench.frames import read_image

    clip = pred / "bikes"
    for p in sorted(clip.iterdir()):
        small = cv2.resize(read_image(p), (40, 24), interpolation=cv2.INTER_AREA)
        p.unlink()
        write_frames(clip, [small], start=int(p.stem))
    assert_user_error(score(pred, gt, out), capsys, out, "bikes", "40x24", "48x32", "--resize")
    assert score(pred, gt, out, "--resize") == 0
    capsys.readouterr()
    doc = json.loads(out.read_text())
    assert "bicubic" in doc["protocol"]["resize"]
    assert doc["metrics"]["psnr"] is not None and doc["n_frames"] == 6


def test_corrupt_image(tiny, capsys):
    pred, gt, out = tiny
    (pred / "bikes" / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    assert_user_error(score(pred, gt, out), capsys, out, "00001.png")


def test_truncated_image(tiny, capsys):
    pred, gt, out = tiny
    p = pred / "bigbuckbunny" / "00002.png"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    assert_user_error(score(pred, gt, out), capsys, out, "00002.png")


def test_truncated_video(tiny, capsys, sample_frames):
    pred, gt, out = tiny
    import shutil

    shutil.rmtree(pred / "bikes")
    video = pred / "bikes.mp4"
    write_video(video, np.ascontiguousarray(sample_frames["bikes"][:3, :32, :48]))
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    assert_user_error(score(pred, gt, out), capsys, out, "bikes.mp4")


def test_empty_prediction_folder(tiny, capsys):
    pred, gt, out = tiny
    import shutil

    shutil.rmtree(pred)
    pred.mkdir()
    assert_user_error(score(pred, gt, out), capsys, out, str(pred), "no clips")


def test_empty_clip_folder(tiny, capsys):
    pred, gt, out = tiny
    for p in (pred / "bikes").iterdir():
        p.unlink()
    assert_user_error(score(pred, gt, out), capsys, out, "bikes", "no frames")


def test_grayscale_frame(tiny, capsys):
    pred, gt, out = tiny
    from PIL import Image

    p = pred / "bikes" / "00001.png"
    Image.open(p).convert("L").save(p)
    assert_user_error(score(pred, gt, out), capsys, out, "00001.png", "grayscale")


def test_transparent_rgba_frame(tiny, capsys):
    pred, gt, out = tiny
    from PIL import Image

    p = pred / "bikes" / "00001.png"
    im = Image.open(p).convert("RGBA")
    a = np.asarray(im).copy()
    a[:4, :4, 3] = 0
    Image.fromarray(a, "RGBA").save(p)
    assert_user_error(score(pred, gt, out), capsys, out, "00001.png", "RGBA")


def test_opaque_rgba_frame_is_scored_as_rgb(tiny, capsys):
    pred, gt, out = tiny
    import json

    from PIL import Image

    p = pred / "bikes" / "00001.png"
    before = score(pred, gt, out)
    ref = json.loads(out.read_text())["per_frame"]["bikes"]["psnr"]
    Image.open(p).convert("RGBA").save(p)  # alpha 255 everywhere
    assert before == 0 and score(pred, gt, out) == 0
    assert json.loads(out.read_text())["per_frame"]["bikes"]["psnr"] == ref
    capsys.readouterr()


def test_16bit_png(tiny, capsys):
    pred, gt, out = tiny
    import cv2

    p = pred / "bikes" / "00000.png"
    img = cv2.imread(str(p), cv2.IMREAD_COLOR).astype(np.uint16) * 257
    assert cv2.imwrite(str(p), img)
    assert_user_error(score(pred, gt, out), capsys, out, "00000.png", "16-bit")


def test_non_image_file_in_clip_folder(tiny, capsys):
    pred, gt, out = tiny
    (pred / "bikes" / "notes.txt").write_text("not a frame")
    assert_user_error(score(pred, gt, out), capsys, out, "notes.txt")


def test_unknown_metric(tiny, capsys):
    pred, gt, out = tiny
    rc = main(["score", "--pred", str(pred), "--gt", str(gt), "--metrics", "psnr,sharpness", "--json", str(out),
               "--quiet"])
    assert_user_error(rc, capsys, out, "sharpness")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is present here")
def test_cuda_without_cuda(tiny, capsys):
    pred, gt, out = tiny
    assert_user_error(score(pred, gt, out, "--device", "cuda"), capsys, out, "cuda")


def test_missing_gt_folder(tiny, capsys):
    pred, gt, out = tiny
    assert_user_error(score(pred, gt.parent / "nowhere", out), capsys, out, "nowhere", "not found")
