"""The model registry: built-ins by name, plug-ins through the `vcbench.models` entry point group."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch

from vcbench.baselines import registry
from vcbench.baselines.base import Colorizer
from vcbench.baselines.gray import Gray
from vcbench.cli import main
from vcbench.errors import InputError
from vcbench.frames import Clip, sample_videos
from vcbench.lab import rgb_uint8_to_lab
from vcbench.weights import WeightFile

PLUGIN_MODULE = '''
import numpy as np
import torch
from vcbench.baselines.base import Colorizer
from vcbench.lab import lab_to_rgb_uint8


class Sepia(Colorizer):
    """A third-party model: the frame's L with a fixed warm tint (a=8, b=24)."""

    name = "sepia"
    description = "constant warm tint (test plug-in)"
    uses_reference = False

    def start_clip(self, references):
        self.clips = getattr(self, "clips", 0) + 1

    def weights_used(self):  # the {file: sha256} strings of the interface before WeightFile
        return {"sepia.pth": "cd" * 32}

    def colorize(self, luminance):
        L = luminance.float()
        ab = torch.tensor([8.0, 24.0]).view(1, 2, 1, 1).expand(L.shape[0], 2, *L.shape[2:])
        return lab_to_rgb_uint8(torch.cat([L, ab], 1))


class NotAModel:
    pass
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A tiny installed distribution on sys.path: a module plus a *.dist-info with entry_points.txt."""
    site = tmp_path / "site"
    (site / "vcb_sepia_plugin").mkdir(parents=True)
    (site / "vcb_sepia_plugin" / "__init__.py").write_text(PLUGIN_MODULE)
    info = site / "vcb_sepia_plugin-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vcb-sepia-plugin\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [vcbench.models]
        sepia = vcb_sepia_plugin:Sepia
        ghost = vcb_no_such_module:Ghost
        wrongtype = vcb_sepia_plugin:NotAModel
        gray = vcb_sepia_plugin:Sepia
        """))
    monkeypatch.syspath_prepend(str(site))
    yield site


def _frame() -> np.ndarray:
    clip = Clip("carphone", sample_videos()["carphone_pristine"], "video")
    return next(iter(clip.iter_frames()))


def test_builtins_are_listed_and_load():
    names = registry.MODELS.names()
    for n in ("gray", "reinhard", "welsh", "propagate", "devc", "zhang16", "zhang17"):
        assert n in names
    assert isinstance(registry.get_model("gray"), Gray)
    assert registry.model_class("reinhard").name == "reinhard"


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(InputError) as err:
        registry.get_model("no-such-model")
    msg = str(err.value)
    assert "no-such-model" in msg and "reinhard" in msg and "welsh" in msg and "\n" not in msg


def test_plugin_is_listed_and_runs(plugin):
    entries = registry.MODELS
    assert entries["sepia"].target == "vcb_sepia_plugin:Sepia"
    assert entries["sepia"].origin == "vcb-sepia-plugin 0.3"
    model = registry.get_model("sepia", "cpu")
    assert isinstance(model, Colorizer)
    # converted once where the plug-in's class is loaded: every reader gets WeightFile values
    assert model.weights_used() == {"sepia.pth": WeightFile("cd" * 32)} and model.verified
    frame = _frame()
    L = rgb_uint8_to_lab(torch.from_numpy(frame).permute(2, 0, 1)[None])[:, :1]
    model.start_clip([])
    out = model.colorize(L)
    assert out.shape == (1, 3, *frame.shape[:2]) and out.dtype == torch.uint8
    rgb = out[0].double()
    assert (rgb[0] >= rgb[2]).float().mean() > 0.99  # warm: red above blue nearly everywhere
    info = registry.model_info("sepia")
    assert info.available and info.description == "constant warm tint (test plug-in)"


def test_plugin_cannot_shadow_a_builtin(plugin):
    assert registry.model_class("gray") is Gray
    assert registry.MODELS["gray"].origin == "built-in"


def test_broken_plugins_are_unavailable_not_fatal(plugin):
    ghost = registry.model_info("ghost")
    assert not ghost.available and "ModuleNotFoundError" in ghost.error
    wrong = registry.model_info("wrongtype")
    assert not wrong.available and "not a vcbench.baselines.base.Colorizer subclass" in wrong.error
    with pytest.raises(InputError, match="ghost.*cannot be loaded"):
        registry.get_model("ghost")


def test_models_list_cli_tolerates_a_missing_builtin_module(plugin, monkeypatch, capsys, torch_home):
    monkeypatch.setitem(registry.MODELS, "notyet", "vcbench.baselines.not_written_yet:NotYet")
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["notyet"]["available"] is False
    assert "vcbench.baselines.not_written_yet" in rows["notyet"]["error"]
    assert rows["sepia"]["available"] is True and rows["sepia"]["origin"] == "vcb-sepia-plugin 0.3"
    assert rows["reinhard"]["weights"] == []
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out
    assert "notyet" in table and "UNAVAILABLE" in table and "sepia" in table


def test_models_list_reports_weights_status(monkeypatch, capsys, torch_home):
    """A model needing a registered weight file shows it missing, then present, without downloading."""
    from vcbench.weights import REGISTRY, checkpoints_dir

    name = sorted(REGISTRY)[0]

    class NeedsWeights(Gray):
        weights = (name,)

    monkeypatch.setitem(registry.MODELS, "needsweights", registry.ModelEntry("needsweights", obj=NeedsWeights))
    assert main(["models", "list", "--json"]) == 0
    row = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["needsweights"]
    assert row["weights"][0]["name"] == name and row["weights"][0]["status"] == "missing"
    (checkpoints_dir() / REGISTRY[name].filename).write_bytes(b"not the real file")
    assert main(["models", "list", "--json"]) == 0
    row = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["needsweights"]
    assert row["weights"][0]["status"] in ("unverified", "unchecked")
