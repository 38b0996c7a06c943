"""vcbench.devices agrees with the four resolvers it replaces (issue 12, plan 3.5): evaluate's
`resolve_device` (gone: evaluate calls this one now) and `device_description`, MetricSuite's `check_request`, retrieval's and the build
stages' "cuda when available" defaults (gone too: retrieval and the build stages call this one, F3 and Bd3). The one intended difference: "auto" is accepted where
MetricSuite refused it."""

from __future__ import annotations

import os
import platform

import pytest
import torch

from vcbench import evaluate
from vcbench.devices import device_description, resolve_device
from vcbench.errors import InputError, VcbenchError
from vcbench.metrics.sizing import default_batch_size
from vcbench.metrics.suite import check_request


def _suite_device(spec):
    return check_request(["psnr"], spec)[0]


@pytest.fixture(params=[False, True], ids=["no-cuda", "cuda"])
def cuda(request, monkeypatch) -> bool:
    """Both machines: this one, and one where CUDA is available (only availability is asked here)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: request.param)
    return request.param


@pytest.mark.parametrize("spec", [None, "", "auto"])
def test_auto_is_the_gpu_when_present(cuda, spec):
    expected = torch.device("cuda" if cuda else "cpu")
    assert resolve_device(spec) == expected
    assert resolve_device() == expected  # the default is auto


@pytest.mark.parametrize("spec", ["cpu", torch.device("cpu"), "cuda", "cuda:1", torch.device("cuda", 0)])
def test_explicit_devices_agree(cuda, spec):
    if cuda or torch.device(spec).type == "cpu":
        assert resolve_device(spec) == _suite_device(spec) == torch.device(spec)
        return
    for resolver in (resolve_device, _suite_device):
        with pytest.raises(VcbenchError, match="cuda") as info:
            resolver(spec)
        assert "no CUDA device is available" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("spec", ["gpu", "cpu:x", "cuda:-3x", "AUTO"])
def test_unknown_names_are_one_line_errors(spec):
    for resolver in (_suite_device,):
        with pytest.raises(VcbenchError, match="unknown device"):
            resolver(spec)
    with pytest.raises(InputError) as info:
        resolve_device(spec)
    assert str(info.value) == f"unknown device {spec!r}. use cpu, cuda, cuda:N or auto."
    assert info.value.exit_code == 2


def test_auto_where_metric_suite_refused_it(cuda):
    """MetricSuite's check_request refused "auto" before it called resolve_device; now it resolves it
    as evaluate does (the GPU when there is one)."""
    assert _suite_device("auto") == resolve_device("auto") == torch.device("cuda" if cuda else "cpu")
    # and the scorer's decode batch is sized for the device "auto" picks
    assert default_batch_size(480, 854, "auto") == default_batch_size(480, 854, "cuda" if cuda else "cpu")


def test_device_description_is_what_runs_record():
    """The text evaluate wrote into every run so far (evaluate now imports this function)."""
    assert evaluate.device_description is device_description
    cpu = torch.device("cpu")
    assert device_description(cpu) == f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
