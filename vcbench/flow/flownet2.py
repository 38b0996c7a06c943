"""FlowNet2 (ptlflow 0.4.2, checkpoint "things"): the field's estimator for warp error.

ptlflow is imported lazily, only here, because importing it breaks when faiss-cpu is installed:
its `models/scv/knn.py` calls `faiss.StandardGpuResources()` and catches only ImportError. While
ptlflow imports, `sys.modules["faiss"]` is set to None (so `import faiss` raises ImportError, which
ptlflow handles) and restored afterwards; vcbench's own faiss use is untouched. ptlflow also prints
to stdout while importing, which would corrupt `--json -` output, so that goes to stderr.

Inputs: RGB uint8 -> BGR in [0, 1] (ptlflow's convention; the model flips to RGB and subtracts each
image's mean itself), replicate-padded to a multiple of 64, flow cropped back. FlowNetC's correlation
is swapped for `vcbench.flow.correlation.flownetc_correlation` (same values, far faster than
ptlflow's pure-torch fallback when the CUDA extension is absent).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from typing import Any

import torch

from vcbench import weights as vw
from vcbench.errors import MissingDependencyError, WeightsError
from vcbench.flow.base import FlowEstimator, pad_to_multiple, unpad
from vcbench.flow.correlation import flownetc_correlation

PAD_MULTIPLE = 64
INSTALL_HINT = "pip install 'vcbench[flownet2]' or choose --flow dis|raft"
_MISSING = object()


def ptlflow_installed() -> bool:
    """Whether ptlflow (an optional extra) can be found, without importing it (slow, see above)."""
    import importlib.util

    return importlib.util.find_spec("ptlflow") is not None


def import_ptlflow_flownet2() -> tuple[Any, Any]:
    """(ptlflow module, FlowNet2 class), imported with faiss hidden from ptlflow."""
    saved = sys.modules.get("faiss", _MISSING)
    sys.modules["faiss"] = None  # type: ignore[assignment]  # `import faiss` -> ImportError inside ptlflow
    # ptlflow's import chatter (models FlowNet2 never uses: "xFormers not available" from its vendored
    # dinov2, timm deprecation warnings) is muted for the import only.
    dinov2_log = logging.getLogger("dinov2")
    was_disabled = dinov2_log.disabled
    dinov2_log.disabled = True
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import ptlflow
            from ptlflow.models.flownet.flownet2 import FlowNet2
    except ImportError as exc:
        raise MissingDependencyError(f"FlowNet2 needs ptlflow 0.4.2, which failed to import ({exc})",
                                     hint=INSTALL_HINT) from exc
    finally:
        dinov2_log.disabled = was_disabled
        if saved is _MISSING:
            sys.modules.pop("faiss", None)
        else:
            sys.modules["faiss"] = saved  # type: ignore[assignment]
    return ptlflow, FlowNet2


def _check_keys(model_cls: Any, state_dict: dict[str, Any]) -> None:
    """Fail fast (no 162M-parameter build) when the keys or shapes are not FlowNet2's."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in model_cls().state_dict().items()}
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state_dict)
                   if tuple(getattr(state_dict[k], "shape", ())) != expected[k])
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing keys (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})" if unexpected else "",
                 f"{len(wrong)} wrong shapes (e.g. {wrong[0]})" if wrong else ""]
        raise RuntimeError("not FlowNet2's state dict: " + ", ".join(p for p in parts if p))


def build_flownet2(checkpoint: dict[str, Any] | None = None, *, fast_correlation: bool = True) -> torch.nn.Module:
    """ptlflow's FlowNet2, restored from a loaded Lightning checkpoint as `ptlflow.restore_model` does.

    A ptlflow `.ckpt` is a Lightning checkpoint: the weights under "state_dict" (strict load) and
    optional "hyper_parameters" whose train_size / train_avg_length / extra_params ptlflow copies onto
    the model (bookkeeping only: FlowNet2's forward does not read them).
    """
    _, FlowNet2 = import_ptlflow_flownet2()
    if checkpoint is not None:
        if "state_dict" not in checkpoint:
            raise KeyError("no 'state_dict' entry: not a ptlflow Lightning checkpoint")
        _check_keys(FlowNet2, checkpoint["state_dict"])
    # Built on the CPU with its (wasted) random init: a meta-device build would skip it, but ptlflow
    # also hangs torchmetrics training state on every sub-network, outside the state dict.
    model = FlowNet2()
    if checkpoint is not None:
        hp = checkpoint.get("hyper_parameters") or {}
        for key in ("train_size", "train_avg_length"):
            if key in hp:
                setattr(model, key, hp[key])
        for key, value in (hp.get("extra_params") or {}).items():
            model.add_extra_param(key, value)
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    if fast_correlation:
        model.flownetc.corr = flownetc_correlation  # an instance attribute in ptlflow's FlowNetC
    return model.eval()


class FlowNet2Flow(FlowEstimator):
    """ptlflow FlowNet2 ("things"), inputs padded to a multiple of 64."""

    name = "flownet2"

    def __init__(self, device: str | torch.device = "cpu", *, weights_path: str | None = None,
                 allow_unverified: bool = False, batch_size: int = 4) -> None:
        super().__init__(device)
        if not ptlflow_installed():  # before resolving (or downloading) a checkpoint nothing could run
            raise MissingDependencyError("FlowNet2 needs ptlflow 0.4.2, which is not installed", hint=INSTALL_HINT)
        self._resolved = vw.resolve("flownet2_things", weights_path, allow_unverified=allow_unverified)
        ckpt = vw.load_state_dict(self._resolved.path)
        try:
            model = build_flownet2(ckpt)
        except (RuntimeError, KeyError) as exc:  # wrong keys/shapes, not a Lightning checkpoint
            raise WeightsError(f"cannot load FlowNet2 checkpoint ({str(exc).splitlines()[0]})",
                               path=self._resolved.path,
                               hint="re-download it with `vcbench weights download flownet2_things`") from exc
        self.model = model.to(self.device)
        self.batch_size = max(1, int(batch_size))
        import ptlflow

        self.params = {"model": "ptlflow flownet2", "checkpoint": "things", "input": "BGR in [0, 1]",
                       "pad": f"replicate to a multiple of {PAD_MULTIPLE}", "ptlflow": ptlflow.__version__}

    def weights_used(self) -> dict[str, vw.WeightFile]:
        return self._resolved.used()

    @torch.inference_mode()
    def _flow(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(0, a.shape[0], self.batch_size):
            x = a[i:i + self.batch_size].to(self.device).flip(1).float() / 255.0
            y = b[i:i + self.batch_size].to(self.device).flip(1).float() / 255.0
            x, pads = pad_to_multiple(x, PAD_MULTIPLE)
            y, _ = pad_to_multiple(y, PAD_MULTIPLE)
            flow = self.model({"images": torch.stack((x, y), dim=1)})["flows"][:, 0]
            out.append(unpad(flow, pads).float())
        return torch.cat(out)
