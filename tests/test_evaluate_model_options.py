"""What the harness passes to a model: leaderboard defaults (DEVC geometry), propagation for
`--reference first-frame`, `--weights PATH`, and the model's own `verified` flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vcbench.baselines import registry
from vcbench.baselines.devc import DEVC
from vcbench.baselines.devc.inference import DEVCOptions
from vcbench.baselines.reinhard import Reinhard
from vcbench.cli import main
from vcbench.errors import InputError
from vcbench.evaluate import model_options_for
from vcbench.reports.db import ResultsDB

SAMPLE_OPTS = ["--dataset-option", "frames=2", "--dataset-option", "width=48", "--dataset-option", "clips=carphone"]


class Propagating(Reinhard):
    """Reinhard with a (recorded) propagation switch and a weights option, to see what the harness passes."""

    name = "propagating"
    supports_propagation = True
    weights = ("zhang16",)

    def __init__(self, device="cpu", propagate: bool = False, weights: str | None = None) -> None:
        super().__init__(device)
        self.options = {"propagate": propagate, "weights": weights}


def test_devc_reproduces_test_py_in_python_and_runs_leaderboard_under_evaluate():
    assert DEVCOptions().geometry == "official"
    assert model_options_for(DEVC, {}, reference_mode="first-frame") == {"geometry": "leaderboard", "propagate": True}
    assert model_options_for(DEVC, {}, reference_mode="exemplar") == {"geometry": "leaderboard", "propagate": False}
    user = {"geometry": "official", "propagate": False}
    assert model_options_for(DEVC, user, reference_mode="first-frame") == user  # the user's choice wins
    assert model_options_for(DEVC, {}, weights=Path("/w/devc.zip"))["weights"] == "/w/devc.zip"
    assert model_options_for(Reinhard, {}, reference_mode="first-frame") == {}  # no propagation mode: untouched
    with pytest.raises(InputError, match="loads no weights"):
        model_options_for(Reinhard, {}, weights="x.pth")


def test_devc_reports_unverified_weights_to_the_harness(tmp_path, monkeypatch):
    import vcbench.baselines.devc as devc_mod
    from vcbench.baselines.devc.weights import DEVCWeights

    folder_weights = DEVCWeights({}, {}, {}, sha256={"colornet_iter_76000.pth": "ab" * 32}, source=tmp_path,
                                 verified=False)  # what a folder of .pth files gives: no hash covers it
    monkeypatch.setattr(devc_mod, "load_devc_weights", lambda *a, **k: folder_weights)
    monkeypatch.setattr(devc_mod, "build_devc_net", lambda w, device: torch.nn.Conv2d(1, 1, 1))
    model = DEVC("cpu", weights=str(tmp_path))
    assert model.verified is False and model.devc_options.geometry == "official"
    assert model.unverified_weights == ["colornet_iter_76000.pth"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.MODELS, "propagating", f"{__name__}:Propagating")
    return tmp_path


def _evaluate(env: Path, *extra: str, model: str = "propagating") -> int:
    return main(["evaluate", "--model", model, "--dataset", "sample", *SAMPLE_OPTS, "--db", str(env / "r.sqlite"),
                 "--metrics", "psnr", "--flow", "dis", "--device", "cpu", "--quiet", *extra])


def test_reference_mode_reaches_models_with_a_propagation_mode(env):
    assert _evaluate(env) == 0
    assert _evaluate(env, "--reference", "exemplar") == 0
    runs = {r.reference_mode: r for r in ResultsDB(env / "r.sqlite").runs()}
    assert runs["first-frame"].model_config["propagate"] is True
    assert runs["exemplar"].model_config["propagate"] is False


def test_weights_flag_reaches_the_model_and_is_recorded(env, capsys):
    w = env / "my.pth"
    w.write_bytes(b"x")
    assert _evaluate(env, "--weights", str(w), "--json", str(env / "out.json")) == 0
    run = ResultsDB(env / "r.sqlite").runs()[0]
    assert run.model_config["weights"] == str(w)
    assert run.identity_extra["weights_path"] == str(w.resolve())
    assert json.loads((env / "out.json").read_text())["run"]["model_config"]["weights"] == str(w)
    assert _evaluate(env, "--weights", str(env / "missing.pth")) == 2
    assert "missing.pth: weights not found" in capsys.readouterr().err
    assert _evaluate(env, "--weights", str(w), model="reinhard") == 2
    assert "loads no weights" in capsys.readouterr().err


def test_two_models_share_the_save_frames_folder(env, capsys):
    from vcbench.reports.plots import FrameSources

    frames = env / "frames"
    assert _evaluate(env, "--save-frames", str(frames)) == 0
    assert _evaluate(env, "--save-frames", str(frames), model="gray") == 0
    assert sorted(p.name for p in frames.iterdir()) == ["gray", "propagating"]
    for model in ("gray", "propagating"):
        assert len(list((frames / model / "carphone").glob("*.png"))) == 2
        assert FrameSources.parse(str(frames)).clip_dirs(model, "carphone") == [frames / model / "carphone"]
