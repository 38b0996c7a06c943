"""Post-processing wrappers: BASE+WRAPPER names, option routing, run identity, `models list`."""

from __future__ import annotations

import json

import pytest
import torch

from vcbench.baselines import registry
from vcbench.baselines.base import Colorizer
from vcbench.baselines.dvp import DVP
from vcbench.baselines.welsh import Welsh
from vcbench.cli import main
from vcbench.errors import InputError
from vcbench.evaluate import build_model
from conftest import gt_luminance

FAST = {"epochs": 1, "init_epochs": 1}


pytestmark = pytest.mark.usefixtures("one_torch_thread")




def test_a_wrapper_takes_a_colorizer_and_is_one(sample_frames):
    frames = sample_frames["bikes"][:3, :32, :48]
    model = DVP(Welsh(samples=50), **FAST)
    assert isinstance(model, Colorizer) and model.name == "welsh+dvp"
    model.start_clip([sample_frames["bikes"][0]])
    out = model.colorize(gt_luminance(frames))
    assert out.shape == (3, 3, 32, 48) and out.dtype == torch.uint8
    cfg = model.config()
    assert cfg["epochs"] == 1 and cfg["base"] == {"name": "welsh", "config": Welsh(samples=50).config()}
    with pytest.raises(TypeError):
        DVP("welsh")


def test_registry_builds_wrapped_models_and_routes_options():
    cls = registry.model_class("welsh+dvp")
    assert issubclass(cls, DVP) and cls.name == "welsh+dvp" and cls.uses_reference
    model = build_model("welsh+dvp", torch.device("cpu"), {"epochs": 2, "samples": 50, "dvp.seed": 7, "welsh.seed": 3})
    assert model.options["epochs"] == 2 and model.options["seed"] == 7
    assert model.base.options["samples"] == 50 and model.base.options["seed"] == 3
    # `seed` is an option of both: a plain key is refused with a one-line hint
    with pytest.raises(InputError, match="taken by both.*dvp.seed") as err:
        build_model("welsh+dvp", torch.device("cpu"), {"seed": 1})
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="does not take the option 'nonsense'"):
        build_model("welsh+dvp", torch.device("cpu"), {"nonsense": 1})
    with pytest.raises(InputError, match="unknown wrapper 'nope'.*dvp, lai18"):
        registry.model_class("welsh+nope")
    with pytest.raises(InputError, match="unknown model 'nomodel'"):
        registry.model_class("nomodel+dvp")
    chained = registry.model_class("gray+dvp+dvp")
    assert chained.name == "gray+dvp+dvp"


def test_both_configs_reach_the_run_identity(tmp_path):
    from vcbench.benchmarks import load_benchmark
    from vcbench.evaluate import evaluate
    from vcbench.reports.db import ResultsDB

    bench = load_benchmark("sample", cache_dir=tmp_path / "c", options={"frames": 3, "width": 32, "clips": "carphone"})
    db = ResultsDB(tmp_path / "r.sqlite")
    kw = dict(db=db, metrics=["psnr"], flow="dis", quiet=True, cache_dir=tmp_path / "c")
    a = evaluate("welsh+dvp", bench, model_options={**FAST, "samples": 40}, **kw)
    b = evaluate("welsh+dvp", bench, model_options={**FAST, "samples": 60}, **kw)          # base option differs
    c = evaluate("welsh+dvp", bench, model_options={"epochs": 2, "init_epochs": 1, "samples": 40}, **kw)  # wrapper's
    again = evaluate("welsh+dvp", bench, model_options={**FAST, "samples": 40}, **kw)
    assert len({a.record.run_key, b.record.run_key, c.record.run_key}) == 3
    assert again.reused and again.record.run_key == a.record.run_key
    assert a.record.model == "welsh+dvp"
    assert a.record.model_config["base"]["config"]["samples"] == 40 and c.record.model_config["epochs"] == 2


def test_models_list_shows_wrappers_apart_and_unrunnable_systems_with_the_reason(capsys):
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["dvp"]["kind"] == "wrapper" and rows["dvp"]["weights"] == []
    assert rows["lai18"]["kind"] == "wrapper" and rows["lai18"]["weights"][0]["status"] == "missing"
    assert rows["welsh"]["kind"] == "model"
    for name, why in (("he18", "Caffe"), ("meyer18", "no public code")):
        assert rows[name]["available"] is False and why in rows[name]["error"]
    assert rows["tcvc"]["kind"] == "model"  # a built-in since the TCVC port
    assert main(["models", "list"]) == 0
    text = capsys.readouterr().out
    models_part, _, wrappers_part = text.partition("\nwrappers:")
    assert "BASE+dvp" in wrappers_part and "BASE+lai18" in wrappers_part and "BASE+" not in models_part
    with pytest.raises(InputError, match="'he18' is not available"):
        registry.model_class("he18")
