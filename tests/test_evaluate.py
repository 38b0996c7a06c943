"""`vcbench evaluate` end to end on a tiny slice of the bundled sample (2 clips x 3 frames, 48 px wide)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vcbench import frames as frames_mod
from vcbench.baselines import registry
from vcbench.baselines.reinhard import Reinhard
from vcbench.cli import main
from vcbench.benchmarks import load_benchmark
from vcbench.lab import rgb_uint8_to_lab
from vcbench.reports.db import ResultsDB

SAMPLE_OPTS = ["--dataset-option", "frames=3", "--dataset-option", "width=48", "--dataset-option", "clips=bikes,carphone"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("VCBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VCBENCH_DB", raising=False)
    return tmp_path


def _evaluate(env: Path, *extra: str, model: str = "reinhard", metrics: str = "psnr,colorfulness") -> int:
    return main(["evaluate", "--model", model, "--dataset", "sample", *SAMPLE_OPTS, "--db", str(env / "r.sqlite"),
                 "--metrics", metrics, "--flow", "dis", "--device", "cpu", "--quiet", *extra])


def _bench():
    return load_benchmark("sample", options={"frames": 3, "width": 48, "clips": "bikes,carphone"})


def _psnr_clip(pred: np.ndarray, gt: np.ndarray) -> float:
    mse = ((pred.astype(np.float64) - gt.astype(np.float64)) ** 2).mean(axis=(1, 2, 3))
    return float(np.mean(10 * np.log10(255.0 ** 2 / mse)))


def _reinhard_clip(clip) -> tuple[np.ndarray, np.ndarray]:
    gt = np.stack(list(clip.iter_frames()))
    m = Reinhard()
    m.start_clip([gt[0]])
    L = rgb_uint8_to_lab(torch.from_numpy(gt).permute(0, 3, 1, 2))[:, :1]
    return m.colorize(L).permute(0, 2, 3, 1).numpy(), gt


def test_evaluate_records_the_run_with_correct_values(env, capsys):
    assert _evaluate(env, "--json", str(env / "out.json"), "--save-frames", str(env / "frames")) == 0
    out = capsys.readouterr().out
    assert "psnr" in out and "recorded as run 1" in out and "frames/s" in out
    runs = ResultsDB(env / "r.sqlite").runs()
    assert len(runs) == 1
    run = runs[0]
    bench = _bench()
    assert run.model == "reinhard" and run.dataset == "sample" and run.dataset_checksum == bench.checksum
    assert run.protocol == "vcbench-v1/dis" and run.reference_mode == "first-frame"
    assert run.n_clips == 2 and run.n_frames == 6 and run.fps and run.fps > 0
    assert run.versions["torch"] == torch.__version__.split("+")[0] or run.versions["torch"] == torch.__version__
    assert run.gt_metrics["colorfulness"] > 0 and set(run.gt_per_clip) == {"bikes", "carphone"}
    # the recorded PSNR is the PSNR of what the model produces, against the right GT frames
    for clip in bench.clips:
        pred, gt = _reinhard_clip(clip)
        assert run.per_clip[clip.name]["psnr"] == pytest.approx(_psnr_clip(pred, gt), abs=1e-6)
        saved = np.stack([frames_mod.read_image(p) for p in sorted((env / "frames" / "reinhard" / clip.name).iterdir())])
        assert np.array_equal(saved, pred)
    assert [p.name for p in (env / "frames").iterdir()] == ["reinhard"]  # DIR/<model>/<clip>/
    assert not [p for p in (env / "frames" / "reinhard").iterdir() if p.name.startswith(".")]
    data = json.loads((env / "out.json").read_text())
    assert data["run"]["run_key"] == run.run_key and data["run"]["reused"] is False
    assert data["metrics"]["psnr"] == pytest.approx(run.metrics["psnr"])
    assert data["protocol"]["dataset"]["frames"] == 3


def test_rerun_is_reused_and_force_reruns(env, capsys, monkeypatch):
    assert _evaluate(env) == 0
    first = ResultsDB(env / "r.sqlite").runs()[0]
    capsys.readouterr()

    def boom(self, luminance):
        raise AssertionError("an identical rerun must not run the model")

    monkeypatch.setattr(Reinhard, "colorize", boom)
    assert _evaluate(env, "--json", str(env / "again.json"), "--save-frames", str(env / "f")) == 0
    captured = capsys.readouterr()
    assert "reused run 1" in captured.out and "no frames written" in captured.err
    assert json.loads((env / "again.json").read_text())["run"]["reused"] is True
    monkeypatch.undo()
    monkeypatch.setenv("VCBENCH_CACHE_DIR", str(env / "cache"))
    assert _evaluate(env, "--force") == 0
    assert "recorded as run" in capsys.readouterr().out
    runs = ResultsDB(env / "r.sqlite").runs()
    assert len(runs) == 1 and runs[0].id != first.id and runs[0].run_key == first.run_key
    assert runs[0].metrics["psnr"] == pytest.approx(first.metrics["psnr"])  # CPU path is deterministic
    # a different identity (other metrics, other model option) is a new run
    assert _evaluate(env, metrics="psnr") == 0
    assert _evaluate(env, "--model-option", "samples=50", model="welsh", metrics="psnr") == 0
    runs = ResultsDB(env / "r.sqlite").runs()
    assert len(runs) == 3 and runs[-1].model_config["samples"] == 50


@pytest.mark.parametrize("flownet2_ready", [False, True], ids=["offline", "flownet2-ready"])
def test_auto_flow_from_python_is_the_estimator_it_picks(env, monkeypatch, flownet2_ready):
    """`evaluate(flow="auto")` (the Python API, no CLI in between) resolves `auto` in the library: the
    run's protocol names the estimator, and its identity equals the run that names it explicitly."""
    from vcbench.evaluate import evaluate
    from vcbench.flow import registry as flow_registry

    monkeypatch.setattr(flow_registry, "ptlflow_installed", lambda: flownet2_ready)
    monkeypatch.setattr(flow_registry.weights, "status", lambda name: ("verified", None, None))
    picked = "flownet2" if flownet2_ready else "dis"
    db = ResultsDB(env / "r.sqlite")
    # psnr needs no flow, so nothing runs an estimator: the name alone must reach the protocol
    auto = evaluate("gray", _bench(), db=db, metrics=["psnr"], flow="auto", device="cpu", quiet=True)
    assert auto.record.protocol == f"vcbench-v1/{picked}" and not auto.reused
    named = evaluate("gray", _bench(), db=db, metrics=["psnr"], flow=picked, device="cpu", quiet=True)
    assert named.reused and named.record.run_key == auto.record.run_key


def test_one_evaluate_hashes_each_gt_file_once_and_a_second_hits_the_gt_cache(env, monkeypatch):
    """The benchmark's checksum reads each GT file once, and the GT cache's clip key is built from those
    digests (`Benchmark.clip_digest`), so one `vcbench evaluate` hashes every GT file exactly once (every
    read of vcbench.hashing counted, whoever calls it); a second run, another model, finds the GT
    flow in the cache (frames-kind keys as before) and hashes each file once again, for its checksum."""
    import collections
    import builtins

    import vcbench.hashing
    from vcbench.metrics.gt_cache import GTCache

    reads: collections.Counter = collections.Counter()

    def counting_open(path, *args, **kwargs):
        reads[Path(path)] += 1
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(vcbench.hashing, "open", counting_open, raising=False)
    loads: list[tuple[int, str, bool]] = []
    real_load = GTCache.load

    def load(self, kind, key, n):
        arr = real_load(self, kind, key, n)
        loads.append((run, kind, arr is not None))
        return arr

    monkeypatch.setattr(GTCache, "load", load)
    runs = []
    for run, model in enumerate(("gray", "reinhard")):
        reads.clear()
        assert _evaluate(env, model=model, metrics="psnr,warp_error") == 0
        runs.append(dict(reads))
    paths = [p for c in _bench().clips for p in c.frame_paths()]
    assert len(paths) == 6 and runs == [{p: 1 for p in paths}] * 2
    assert [(r, kind, hit) for r, kind, hit in loads] == [(0, "flow", False)] * 2 + [(1, "flow", True)] * 2


def test_gt_frames_are_decoded_once(env, monkeypatch):
    bench = _bench()
    paths = [p for c in bench.clips for p in c.frame_paths()]
    reads: list[Path] = []
    real = frames_mod.read_image

    def counting(path):
        reads.append(Path(path))
        return real(path)

    monkeypatch.setattr(frames_mod, "read_image", counting)
    assert _evaluate(env) == 0
    assert sorted(reads) == sorted(paths)


class Interrupting(Reinhard):
    """Fails in the second clip, as a Ctrl-C or a crash would."""

    name = "interrupting"

    def start_clip(self, references):
        self.clips = getattr(self, "clips", 0) + 1
        super().start_clip(references)

    def colorize(self, luminance):
        if self.clips == 2:
            raise KeyboardInterrupt
        return super().colorize(luminance)


class WrongShape(Reinhard):
    name = "wrongshape"

    def colorize(self, luminance):
        return super().colorize(luminance)[:, :, :-1]


def test_interrupted_run_records_nothing(env, monkeypatch, capsys):
    monkeypatch.setitem(registry.MODELS, "interrupting", f"{__name__}:Interrupting")
    rc = _evaluate(env, "--save-frames", str(env / "frames"), "--json", str(env / "x.json"), model="interrupting")
    assert rc == 130
    assert ResultsDB(env / "r.sqlite").runs() == []
    assert not (env / "x.json").exists()
    saved = sorted(p.name for p in (env / "frames" / "interrupting").iterdir())
    assert saved == ["bikes"]  # the finished clip only; the interrupted one left no partial folder
    assert len(list((env / "frames" / "interrupting" / "bikes").iterdir())) == 3


def test_model_returning_bad_frames_is_a_clear_error(env, monkeypatch, capsys):
    monkeypatch.setitem(registry.MODELS, "wrongshape", f"{__name__}:WrongShape")
    assert _evaluate(env, model="wrongshape") == 2
    err = capsys.readouterr().err
    assert "model 'wrongshape' returned" in err and "expected a uint8 tensor" in err
    assert ResultsDB(env / "r.sqlite").runs() == []


def test_unknown_model_and_missing_dataset_messages(env, capsys):
    assert main(["evaluate", "--model", "nope", "--dataset", "sample", *SAMPLE_OPTS, "--db", str(env / "r.sqlite"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vcbench: error:") and "unknown model 'nope'" in err and "reinhard" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert _evaluate(env, "--model-option", "bogus=1", model="welsh") == 2
    err = capsys.readouterr().err
    assert "does not take the option(s) bogus" in err and "samples, window, weight, seed" in err
    assert main(["evaluate", "--model", "gray", "--dataset", "davis30", "--data-root", str(env / "none"),
                 "--db", str(env / "r.sqlite"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "davis30" in err and "test.zip" in err and "--data-root" in err and len(err.splitlines()) == 1
    assert not (env / "r.sqlite").exists() or ResultsDB(env / "r.sqlite").runs() == []


class LabelProbe(__import__("vcbench.metrics.base", fromlist=["Metric"]).Metric):
    """Records the label each frame arrives with (what top1/top5 compare against)."""

    name = "labelprobe"
    higher_is_better = True

    def __init__(self, device="cpu", **kw):
        super().__init__()

    def accumulate(self, pred, gt, ctx=None):
        self._current.extend(float(v) for v in ctx.gt_cache["labels"].tolist())


def test_imagenet_labels_reach_the_metrics(env, monkeypatch, capsys):
    from PIL import Image

    from vcbench.benchmarks import imagenet_entries
    from vcbench.metrics import registry as metric_registry
    from vcbench.metrics.registry import MetricInfo

    entries = imagenet_entries()[:3]
    val = env / "val"
    clip = frames_mod.Clip("c", frames_mod.sample_videos()["carphone_pristine"], "video")
    for (synset, fname, _), frame in zip(entries, clip.iter_frames()):
        (val / synset).mkdir(parents=True)
        Image.fromarray(frame[:32, :40]).save(val / synset / fname, format="JPEG")
    monkeypatch.setitem(metric_registry.METRICS, "labelprobe",
                        MetricInfo("labelprobe", f"{__name__}:LabelProbe", True))
    assert main(["evaluate", "--model", "gray", "--dataset", "imagenet-ctest10k", "--data-root", str(val),
                 "--dataset-option", "limit=3", "--metrics", "labelprobe,psnr", "--db", str(env / "r.sqlite"),
                 "--device", "cpu", "--quiet"]) == 0
    run = ResultsDB(env / "r.sqlite").runs()[0]
    assert run.dataset == "imagenet-ctest10k" and run.n_clips == 3 and run.n_frames == 3
    assert {c: v["labelprobe"] for c, v in run.per_clip.items()} == {
        Path(f).stem: float(label) for _, f, label in entries}


@pytest.mark.slow
def test_two_evaluations_at_once_both_land(env):
    """Two processes evaluating different models into one database (and racing to build the sample)."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "vcbench", "evaluate", "--dataset", "sample", "--dataset-option", "frames=2",
           "--dataset-option", "width=32", "--dataset-option", "clips=carphone", "--db", str(env / "shared.sqlite"),
           "--metrics", "psnr", "--flow", "dis", "--device", "cpu", "--quiet"]
    child_env = dict(os.environ, VCBENCH_CACHE_DIR=str(env / "race-cache"), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(cmd + ["--model", m], env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for m in ("gray", "reinhard")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-2000:] for o in outs]
    runs = ResultsDB(env / "shared.sqlite").runs()
    assert sorted(r.model for r in runs) == ["gray", "reinhard"]
    assert len({r.dataset_checksum for r in runs}) == 1  # both saw the same sample files
    benches = [p for p in (env / "race-cache" / "benchmarks").iterdir()]
    assert [p.name for p in benches] == ["sample-v1-2f-32w-carphone"]  # the loser of the race left nothing


def test_unverified_model_weights_are_refused_or_marked(env, monkeypatch, capsys):
    from vcbench.weights import WeightFile

    class Reported(Reinhard):
        def weights_used(self):
            return {"model.pth": WeightFile("ab" * 32, verified=False)}

    assert Reported().unverified_weights == ["model.pth"] and not Reported().verified
    assert Reinhard().unverified_weights == [] and Reinhard().verified
    monkeypatch.setitem(registry.MODELS, "reported", registry.ModelEntry("reported", obj=Reported))
    assert _evaluate(env, model="reported") == 2
    assert "--allow-unverified-weights" in capsys.readouterr().err
    assert _evaluate(env, "--allow-unverified-weights", model="reported") == 0
    run = ResultsDB(env / "r.sqlite").runs()[0]
    assert run.unverified_weights is True and run.weights == {"model.pth": "ab" * 32}
