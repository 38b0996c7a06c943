"""ptlflow is an optional extra: without it FlowNet2 is 'unavailable' (a WeightsError), and `--flow auto`
falls back to DIS instead of aborting the run."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from vcbench.errors import MissingDependencyError, WeightsError


@pytest.fixture
def no_ptlflow(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name.split(".")[0] == "ptlflow" else real(name, *a, **k))
    monkeypatch.setitem(sys.modules, "ptlflow", None)  # `import ptlflow` -> ImportError


def test_auto_flow_needs_ptlflow_as_well_as_the_weights(no_ptlflow, monkeypatch):
    import vcbench.weights
    from vcbench.flow import resolve_flow

    monkeypatch.setattr(vcbench.weights, "status", lambda name: ("verified", None, None))
    assert resolve_flow("auto") == "dis"
    assert resolve_flow("flownet2") == "flownet2"  # an explicit choice is honoured (and fails clearly)


def test_auto_flow_picks_flownet2_with_weights_and_ptlflow(monkeypatch):
    import vcbench.weights
    from vcbench.flow import resolve_flow

    if importlib.util.find_spec("ptlflow") is None:
        pytest.skip("ptlflow not installed here")
    monkeypatch.setattr(vcbench.weights, "status", lambda name: ("verified", None, None))
    assert resolve_flow("auto") == "flownet2"


def test_missing_ptlflow_is_a_weights_error_the_suite_treats_as_unavailable(no_ptlflow):
    from vcbench.flow.flownet2 import FlowNet2Flow, import_ptlflow_flownet2

    for make in (FlowNet2Flow, import_ptlflow_flownet2):
        with pytest.raises(MissingDependencyError) as exc:
            make()
        assert isinstance(exc.value, WeightsError)
        msg = str(exc.value)
        assert "ptlflow" in msg and "pip install" in msg and "\n" not in msg
