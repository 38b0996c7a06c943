"""The protocol record of a scoring run: what makes two runs' numbers comparable.

One function builds the dict that `ScoreResult.protocol` holds, `score --json` prints and the results
database stores, for the streaming scorer (`MetricSuite.protocol`, which gathers the estimator's and
the metrics' weights and notes first) and for the torch-free scorer (`metrics.light`), so the two can
never write different records for the same run. Torch-free.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from vcbench import PROTOCOL_VERSION, __version__
from vcbench.metrics.pairing import labels_record

#: Resampling used when a prediction's size differs from its GT and resizing was asked for.
RESIZE_FILTER = "bicubic, antialiased (torch.nn.functional.interpolate, align_corners=False), rounded to uint8"
#: What the protocol records as the batch size when none was given.
AUTO_BATCH = "auto (from frame size and device)"


def protocol_record(*, flow: dict[str, Any] | None, flow_name: str, decoder: str | None, resize: bool, device: str,
                    weights: Mapping[str, str], unverified: Iterable[str], pooled: Mapping[str, int],
                    notes: Iterable[str], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The protocol dict, in its key order. `flow`: the estimator's name and parameters (None without
    a flow metric); `flow_name`: the estimator the protocol is named after then (`--flow` as resolved);
    `weights`: {file: sha256} of every weight file used; `unverified`: the files among them not verified;
    `pooled`: {metric: frames} of the pooled metrics; `notes`: why a value may mislead; `extra`: the
    scorer's fields (`scorer_fields`), last."""
    proto: dict[str, Any] = {
        "name": f"{PROTOCOL_VERSION}/{flow['name'] if flow else flow_name}",
        "version": PROTOCOL_VERSION,
        "vcbench": __version__,
        "flow": flow,
        "decoder": decoder,
        "resize": f"pred resized to GT size: {RESIZE_FILTER}" if resize else "none (sizes must match)",
        "device": device,
        "weights": dict(sorted(weights.items())),
        "unverified_weights": sorted(set(unverified)),
        "pooled_frames": dict(pooled),
        "notes": list(notes),
    }
    if extra:
        proto.update(extra)
    return proto


def scorer_fields(batch_size: int | None, gt_cache: bool, labels: Mapping[str, int] | None) -> dict[str, Any]:
    """What a scorer adds to the protocol: the batch size asked for, whether the GT cache was used, and
    a record of the true labels when given (`pairing.labels_record`)."""
    extra: dict[str, Any] = {"batch_size": batch_size if batch_size is not None else AUTO_BATCH,
                             "gt_cache": "on" if gt_cache else "off"}
    if labels is not None:
        extra["labels"] = labels_record(labels)
    return extra
