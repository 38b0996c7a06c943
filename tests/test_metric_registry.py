"""The metric registry and `vcbench metrics list`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from vcbench.cli import main
from vcbench.errors import InputError, WeightsError
from vcbench.metrics.registry import METRICS, create_metric, get_info, metric_class, metric_names

EXPECTED = ["psnr", "ssim", "lpips", "fid", "kid", "colorfulness", "top1", "top5", "warp_error", "flicker", "cdc"]


def test_names_and_directions_follow_the_protocol():
    assert metric_names() == EXPECTED
    up = {n for n, m in METRICS.items() if m.higher_is_better is True}
    assert up == {"psnr", "ssim", "top1", "top5"}
    assert METRICS["colorfulness"].higher_is_better is None
    assert {n for n, m in METRICS.items() if "flow" in m.needs} == {"warp_error", "flicker"}
    assert METRICS["lpips"].weights == ("alexnet",) and METRICS["top5"].weights == ("vgg19",)
    assert METRICS["fid"].weights == METRICS["kid"].weights == ("inception_fid",)


@pytest.mark.parametrize("name", EXPECTED)
def test_every_target_is_a_metric_class_agreeing_with_its_entry(name):
    from vcbench.metrics.base import Metric

    cls = metric_class(name)
    assert issubclass(cls, Metric)
    assert cls.name == name
    assert cls.higher_is_better is METRICS[name].higher_is_better
    assert set(METRICS[name].needs) == set(getattr(cls, "needs", ()))
    assert cls.pooled is (name in ("fid", "kid"))


def test_unknown_metric_lists_the_valid_ones():
    with pytest.raises(InputError) as exc:
        create_metric("psnrr")
    msg = str(exc.value)
    assert "psnrr" in msg and all(n in msg for n in EXPECTED) and "\n" not in msg
    with pytest.raises(InputError):
        get_info("FID")


def test_create_metric_passes_common_options_only_where_taken(sample_frames):
    m = create_metric("psnr", "cpu", allow_unverified=True, shared={})
    frames = torch.from_numpy(sample_frames["bikes"][:2]).permute(0, 3, 1, 2).contiguous()
    m.update(frames, frames)
    assert m.compute() == 100.0
    with pytest.raises(TypeError, match="no option 'colour'"):
        create_metric("ssim", colour=True)
    c = create_metric("colorfulness", "cpu", allow_unverified=True)
    assert c.device == torch.device("cpu")


@pytest.mark.parametrize("name,file", [("lpips", "alexnet-owt-7be5be79.pth"),
                                       ("fid", "pt_inception-2015-12-05-6726825d.pth"),
                                       ("top1", "vgg19-dcbb9e9d.pth")])
def test_missing_weights_raise_one_clear_error(torch_home, name, file):
    with pytest.raises(WeightsError) as exc:
        create_metric(name)
    msg = str(exc.value)
    assert file in msg and "vcbench weights download" in msg and "\n" not in msg


def test_metrics_list_json_reports_weights_presence(torch_home, capsys):
    (torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth").write_bytes(b"not hashed by list")
    assert main(["metrics", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == EXPECTED
    assert rows["lpips"]["weights"]["alexnet"]["present"] is True and rows["lpips"]["ready"] is True
    assert rows["fid"]["weights"]["inception_fid"]["present"] is False and rows["fid"]["ready"] is False
    assert rows["psnr"]["weights"] == {} and rows["psnr"]["direction"] == "higher"
    assert rows["colorfulness"]["direction"] == "closest to GT"
    assert rows["top1"]["weights"]["vgg19"]["file"] == "vgg19-dcbb9e9d.pth"


def test_metrics_list_table(torch_home, capsys):
    assert main(["metrics", "list"]) == 0
    out = capsys.readouterr().out
    for n in EXPECTED:
        assert f"\n{n} " in out
    assert "alexnet (missing)" in out and "vcbench weights download" in out


def test_metrics_list_imports_no_metric_module(tmp_path):
    code = ("import sys; from vcbench.cli import main; main(['metrics', 'list', '--json']); "
            "print(sorted(m for m in sys.modules if m.startswith('vcbench.metrics.')), file=sys.stderr)")
    env = {"TORCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    loaded = eval(res.stderr.strip().splitlines()[-1])
    # no metric module: the registry, and the torch-free result record the reports import (plan 3.8)
    assert "vcbench.metrics.registry" in loaded and set(loaded) <= {"vcbench.metrics.registry", "vcbench.metrics.result"}
    assert len(json.loads(res.stdout)) == len(EXPECTED)
