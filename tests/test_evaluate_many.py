"""`vcbench evaluate --model a,b,c`: several models in one pass over the GT, each its own run.

On a slice of the bundled sample (2 clips x 5 frames, 96 px wide: AlexNet, in lpips, needs 40 rows) with the weight-free models; the
networks of fid/kid/lpips/top1/top5 load random state dicts with the real keys from the temporary
TORCH_HOME (`weights_home`).
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from vcbench import frames as frames_mod
from vcbench.baselines import registry
from vcbench.baselines.gray import Gray
from vcbench.cli import main
from vcbench.benchmarks import load_benchmark
from vcbench.errors import InputError
from vcbench.reports.db import ResultsDB

SAMPLE = {"frames": 5, "width": 96, "clips": "bikes,carphone"}
SAMPLE_OPTS = [arg for k, v in SAMPLE.items() for arg in ("--dataset-option", f"{k}={v}")]
#: The metrics without networks (Inception and VGG19 cost about 1 s a frame each on this CPU; the
#: network test below compares fid, kid, top1 and top5 on one frame; lpips shares no GT side).
EQUAL_METRICS = "psnr,ssim,colorfulness,warp_error,flicker,cdc"
#: No GT cache: each run computes its GT side itself.
NETS = ("--no-cache", "--quiet")
#: Every field of a run's JSON except those that differ between any two runs (ids, times, speed, file).
VOLATILE = ("id", "created", "fps", "db")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("VCBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VCBENCH_DB", raising=False)
    return tmp_path


def _evaluate(env: Path, models: str, *extra: str, db: str = "r.sqlite", metrics: str | None = None) -> int:
    return main(["evaluate", "--model", models, "--dataset", "sample", *SAMPLE_OPTS, "--db", str(env / db),
                 *(["--metrics", metrics] if metrics else []), "--flow", "dis", "--device", "cpu", *extra])


def _comparable(run_json: dict) -> dict:
    out = dict(run_json)
    out["run"] = {k: v for k, v in run_json["run"].items() if k not in VOLATILE}
    return out


def test_several_models_equal_separate_runs_to_the_last_digit(env, capsys):
    """gray,reinhard in one command: every value, identity and saved frame equals two separate runs."""
    frames = env / "frames"
    assert _evaluate(env, "gray,reinhard", *NETS, "--json", str(env / "many.json"), "--save-frames", str(frames),
                     db="many.sqlite", metrics=EQUAL_METRICS) == 0
    many = json.loads((env / "many.json").read_text())
    assert list(many) == ["runs"] and [r["run"]["model"] for r in many["runs"]] == ["gray", "reinhard"]
    alone = {}
    for model in ("gray", "reinhard"):
        assert _evaluate(env, model, *NETS, "--json", str(env / f"{model}.json"), "--save-frames", str(env / "alone"),
                         db="alone.sqlite", metrics=EQUAL_METRICS) == 0
        alone[model] = json.loads((env / f"{model}.json").read_text())
        assert "runs" not in alone[model] and alone[model]["run"]["model"] == model  # one model: as always
    for got in many["runs"]:
        want = alone[got["run"]["model"]]
        assert _comparable(got) == _comparable(want)  # floats compared exactly
    # every metric ran, and the two models really differ
    assert not many["runs"][0]["unavailable"], many["runs"][0]["unavailable"]
    assert many["runs"][0]["metrics"]["psnr"] != many["runs"][1]["metrics"]["psnr"]
    assert many["runs"][0]["gt_metrics"] == many["runs"][1]["gt_metrics"]
    # each model its own row, with the identity a separate run gets
    db_many, db_alone = ResultsDB(env / "many.sqlite").runs(), ResultsDB(env / "alone.sqlite").runs()
    assert sorted(r.run_key for r in db_many) == sorted(r.run_key for r in db_alone) and len(db_many) == 2
    for model in ("gray", "reinhard"):
        for clip in ("bikes", "carphone"):
            a = sorted((frames / model / clip).iterdir())
            b = sorted((env / "alone" / model / clip).iterdir())
            assert len(a) == 5 and [p.name for p in a] == [p.name for p in b]
            assert all(np.array_equal(frames_mod.read_image(x), frames_mod.read_image(y)) for x, y in zip(a, b))
    out = capsys.readouterr().out
    assert out.count("recorded as run") == 4  # two here, two alone


def _counters(monkeypatch, targets):
    """Wrap `(owner, attribute, key function)` call sites with counters: {attribute: Counter of keys}."""
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for owner, attr, key in targets:
        real = getattr(owner, attr)

        def wrapper(*args, _real=real, _key=key, _attr=attr, **kwargs):
            counts[_attr][_key(*args, **kwargs)] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, attr, wrapper)
    return counts


def test_each_gt_clip_is_decoded_once_and_its_flow_computed_once(env, monkeypatch):
    """Three models: counted at the real call sites (the frame reader, the clip decoder, the flow
    estimator, the GT flicker), each GT clip is decoded and its flow computed once, not per model."""
    from vcbench.evaluate import evaluate_models
    from vcbench.flow.classic import DISFlow
    from vcbench.metrics.temporal import Flicker

    bench = load_benchmark("sample", options=SAMPLE)  # builds the PNG clips before anything is counted
    counts = _counters(monkeypatch, [
        (frames_mod, "read_image", lambda path: str(path)),
        (frames_mod.Clip, "iter_frames", lambda clip: clip.name),
        (DISFlow, "pair_flows", lambda est, frames: int(frames.shape[0])),  # frames per call (since F4)
        (Flicker, "gt_side", lambda metric, gt, ctx: ctx.clip),
    ])
    evs = evaluate_models(["gray", "reinhard", "welsh"], bench, db=ResultsDB(env / "r.sqlite"), device="cpu",
                          flow="dis", quiet=True, use_cache=False, metrics=["psnr", "warp_error", "flicker"])
    assert [ev.record.model for ev in evs] == ["gray", "reinhard", "welsh"] and not any(ev.reused for ev in evs)
    assert len({ev.record.metrics["psnr"] for ev in evs}) == 3
    frame_files = [str(p) for clip in bench.clips for p in clip.frame_paths()]
    assert len(frame_files) == 10 and counts["read_image"] == {p: 1 for p in frame_files}
    assert counts["iter_frames"] == {"bikes": 1, "carphone": 1}
    assert counts["pair_flows"] == {5: 2}  # per clip one call: the 4 pairs (forward and backward) of 5 frames
    assert counts["gt_side"] == {"bikes": 1, "carphone": 1}
    assert len({ev.record.gt_metrics["flicker"] for ev in evs}) == 1


def test_gt_network_features_are_computed_once_and_equal_a_separate_run(env, weights_home, monkeypatch):
    """GT Inception features (fid, kid) and the GT's VGG19 top-1 (top1, top5) once per clip for two
    models; the second model, which receives them, scores exactly as when run alone."""
    from vcbench.evaluate import evaluate, evaluate_models
    from vcbench.metrics.classification import _TopK
    from vcbench.metrics.inception import _InceptionMetric

    bench = load_benchmark("sample", options={**SAMPLE, "frames": 1, "clips": "carphone"})
    kw = dict(device="cpu", flow="dis", quiet=True, use_cache=False, allow_unverified_weights=True,
              metrics=["fid", "kid", "top1", "top5"])
    counts = _counters(monkeypatch, [(_InceptionMetric, "gt_side", lambda metric, gt: int(gt.shape[0])),
                                     (_TopK, "gt_side", lambda metric, gt: int(gt.shape[0]))])
    evs = evaluate_models(["gray", "reinhard"], bench, db=ResultsDB(env / "many.sqlite"), **kw)
    assert counts["gt_side"] == {1: 2}  # the one frame, once through Inception and once through VGG19
    alone = evaluate("reinhard", bench, db=ResultsDB(env / "alone.sqlite"), **kw).record
    got = evs[1].record
    assert not got.unavailable and got.run_key == alone.run_key
    assert (got.metrics, got.per_clip, got.per_frame) == (alone.metrics, alone.per_clip, alone.per_frame)


def test_reuse_and_force_per_model_and_the_needs_line_for_each(env, capsys):
    assert _evaluate(env, "gray", "--quiet", metrics="psnr,flicker") == 0
    first = ResultsDB(env / "r.sqlite").runs()[0]
    capsys.readouterr()
    assert _evaluate(env, "gray,reinhard", "--json", str(env / "out.json"), metrics="psnr,flicker") == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "vcbench: gray needs: weights: none" in err and "vcbench: reinhard needs: weights: none" in err
    assert f"reused run {first.id}" in captured.out and "recorded as run" in captured.out
    runs = json.loads((env / "out.json").read_text())["runs"]
    assert [(r["run"]["model"], r["run"]["reused"]) for r in runs] == [("gray", True), ("reinhard", False)]
    assert runs[0]["run"]["id"] == first.id and runs[0]["metrics"] == first.metrics
    assert _evaluate(env, "gray,reinhard", "--force", "--quiet", metrics="psnr,flicker") == 0
    rows = ResultsDB(env / "r.sqlite").runs()
    assert sorted(r.model for r in rows) == ["gray", "reinhard"]  # replaced, not added
    assert first.id not in {r.id for r in rows}
    assert {r.model: r.metrics for r in rows}["gray"] == first.metrics


def test_weights_with_several_models_and_a_repeated_model_are_refused(env, capsys):
    w = env / "my.pth"
    w.write_bytes(b"x")
    assert _evaluate(env, "gray,zhang16", "--weights", str(w), metrics="psnr") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--weights applies to one model" in err[0] and "gray, zhang16" in err[0]
    assert _evaluate(env, "gray,reinhard,gray", metrics="psnr") == 2
    assert "model 'gray' is listed twice" in capsys.readouterr().err
    assert _evaluate(env, ",", metrics="psnr") == 2
    assert "no model given" in capsys.readouterr().err
    assert not (env / "r.sqlite").exists() or not ResultsDB(env / "r.sqlite").runs()
    assert not (env / "cache").exists()  # refused before the benchmark was even built


class Failing(Gray):
    """Gray that fails on its second clip, to see that a failed pass records no model."""

    name = "failing"

    def start_clip(self, references):
        self.clips = getattr(self, "clips", 0) + 1
        if self.clips == 2:
            raise InputError("failing on purpose on the second clip")
        super().start_clip(references)


def test_a_failure_during_the_pass_records_no_model(env, capsys, monkeypatch):
    monkeypatch.setitem(registry.MODELS, "failing", f"{__name__}:Failing")
    frames = env / "frames"
    assert _evaluate(env, "reinhard,failing", "--quiet", "--save-frames", str(frames), metrics="psnr") == 2
    assert "failing on purpose" in capsys.readouterr().err
    assert ResultsDB(env / "r.sqlite").runs() == []
    assert not [p for p in frames.rglob("*") if p.name.startswith(".")]  # no half-written clip folder
    assert _evaluate(env, "reinhard", "--quiet", metrics="psnr") == 0  # and its claim was given back
