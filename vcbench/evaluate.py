"""The evaluation harness behind `vcbench evaluate`: run a model on a benchmark, score it, record it.

One streaming pass per clip: each GT batch is decoded once; its L channel goes to the model(s) and
the pairs (GT batch, the models' frames for it) go straight into the scorer (`Scorer.score_pairs_many`),
so nothing is written to disk unless `save_frames` asks for it and only the current batch is held:
memory does not grow with the number of clips. Several models (`evaluate_models`) share that pass: the GT is decoded once per clip and its GT-side
scoring (flow and occlusion, GT features, the GT's own values) is computed once for all of them,
while each model is its own run (identity, record, reuse and `force` per model).

A run is identified (`reports.db.run_key`) by the model, its configuration and weight hashes, the
benchmark's content checksum and protocol, the reference mode, the scoring protocol (flow estimator
with its parameters, metric weights) and the metrics scored. An identical run already in the
database is reused unless `force`; the record is written in one transaction after the whole run
succeeded, so an interrupted or failed run records nothing.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from vcbench.atomic import make_temp_dir
from vcbench.baselines.base import Colorizer
from vcbench.baselines.registry import model_class
from vcbench.benchmarks import Benchmark
from vcbench.devices import device_description, resolve_device
from vcbench.errors import InputError, VcbenchError, WeightsError
from vcbench.flow.registry import resolve_flow
from vcbench.frames import Clip, write_frames
from vcbench.lab import rgb_uint8_to_lab
from vcbench.metrics.result import ScoreResult
from vcbench.metrics.scorer import Scorer
from vcbench.metrics.sizing import default_batch_size
from vcbench.options import coerce_all, parameter_types
from vcbench.reports.db import ResultsDB, RunRecord
from vcbench.weights import digests

#: Packages whose versions are recorded with every run (those that can change a number).
VERSIONED_PACKAGES: tuple[str, ...] = ("vcbench", "torch", "torchvision", "numpy", "scipy", "scikit-image",
                                       "opencv-python", "av", "Pillow", "lpips", "ptlflow")


@dataclass
class Evaluation:
    """The outcome: the stored record, whether it was reused from the database, and the full score
    result when the run happened now (None for a reused run)."""

    record: RunRecord
    reused: bool
    result: ScoreResult | None = None


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def model_options_for(cls: type[Colorizer], options: Mapping[str, Any], *, reference_mode: str | None = None,
                      weights: str | Path | None = None) -> dict[str, Any]:
    """The constructor options the harness passes: the user's, then the model's `evaluate_defaults`,
    `propagate` from the reference mode for models that `supports_propagation`, and `weights=PATH`
    (`--weights`) for models that load weights. A user's explicit option always wins."""
    kwargs = dict(options)
    for key, value in cls.evaluate_defaults.items():
        kwargs.setdefault(key, value)
    if reference_mode is not None and cls.supports_propagation:
        kwargs.setdefault("propagate", reference_mode == "first-frame")
    if weights is not None:
        if not cls.weights:
            raise InputError(f"model {cls.name!r} loads no weights, so --weights does not apply",
                             hint="drop --weights (see `vcbench models list`)")
        if "weights" in options and str(options["weights"]) != str(weights):
            raise InputError("--weights and --model-option weights=... disagree", hint="give the path once")
        kwargs["weights"] = str(weights)
    return kwargs


def model_option_types(cls: type[Colorizer]) -> dict[str, Any]:
    """{option: type} a model declares: its constructor's annotated parameters, and for a model that
    takes `**options` its class attribute `option_types`; option values are checked against these."""
    return {**parameter_types(cls.__init__), **dict(cls.option_types)}


def build_model(name: str, device: torch.device, options: Mapping[str, Any], *,
                allow_unverified_weights: bool = False, reference_mode: str | None = None,
                weights: str | Path | None = None) -> Colorizer:
    """Instantiate a registered model; `allow_unverified_weights` reaches models whose constructor
    declares it (it is how a run is allowed, not what the model computes, so it is not an option).
    `reference_mode` and `weights` feed `model_options_for`."""
    cls = model_class(name)
    kwargs = coerce_all("--model-option", model_options_for(cls, options, reference_mode=reference_mode,
                                                            weights=weights), model_option_types(cls))
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    # Only models that load weights get the flag (a weightless model would record it as an option).
    if "allow_unverified_weights" in params or (takes_any and cls.weights):
        kwargs.setdefault("allow_unverified_weights", allow_unverified_weights)
    try:
        inspect.signature(cls).bind(device=device, **kwargs)
    except TypeError as exc:
        accepted = [p.name for p in params.values() if p.name not in ("self", "device")
                    and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
        raise InputError(f"model {name!r} does not take the option(s) {', '.join(sorted(kwargs))} ({exc})",
                         hint=f"its options: {', '.join(accepted) or 'none'}") from exc
    return cls(device=device, **kwargs)


class _Timer:
    """Seconds spent inside the model alone (GPU work synchronised), and frames it produced."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.seconds, self.frames = device, 0.0, 0

    def __enter__(self) -> "_Timer":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds += time.perf_counter() - self._t0

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.seconds > 0 else None


def _check_output(name: str, out: Any, n: int, size: tuple[int, int]) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8 or out.shape != (n, 3, *size):
        got = f"{type(out).__name__} {tuple(out.shape)} {out.dtype}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise VcbenchError(f"model {name!r} returned {got}; expected a uint8 tensor of shape {(n, 3, *size)}",
                           hint="a Colorizer returns (N, 3, H, W) uint8 RGB at the GT resolution")
    return out


def _colorize(model: Colorizer, name: str, gt: np.ndarray, timer: _Timer) -> torch.Tensor:
    """The model's frames for the GT frames `gt` ((B, H, W, 3) uint8), from their L channel."""
    L = rgb_uint8_to_lab(torch.from_numpy(gt).permute(0, 3, 1, 2).to(model.device))[:, :1].contiguous()
    with timer:
        out = model.colorize(L)
    timer.frames += int(gt.shape[0])
    return _check_output(name, out, int(gt.shape[0]), tuple(gt.shape[1:3]))


def _clip_pairs(models: Sequence[Colorizer], names: Sequence[str], bench: Benchmark, clip: Clip,
                timers: Sequence[_Timer], save_dirs: Sequence[Path | None]) -> Iterator[tuple[np.ndarray, list[torch.Tensor]]]:
    """(GT batch, each model's frames for it) of one clip, the GT decoded once for every model.

    Each model colorizes in its own batch size (`Colorizer.batch_size`, else from the frame size), cut
    from the clip's start as when it runs alone; a GT batch spans the least common multiple of those
    sizes, so every model's frames for it are complete when it is yielded. `save_dirs`: per model, the
    folder a finished clip's frames are renamed into (`--save-frames`); an unfinished clip leaves none."""
    sizes = [max(1, int(m.batch_size)) if m.batch_size else default_batch_size(*clip.size(), m.device)
             for m in models]
    tmp_dirs: list[Path | None] = [None] * len(models)
    done = 0
    try:
        for gt in clip.iter_batches(math.lcm(*sizes)):
            if done == 0:
                for i, (model, save_dir) in enumerate(zip(models, save_dirs)):
                    model.start_clip(bench.references(clip, first_frame=gt[0]))
                    if save_dir is not None:
                        save_dir.mkdir(parents=True, exist_ok=True)
                        tmp_dirs[i] = make_temp_dir(save_dir / clip.name)  # umask mode, not mkdtemp's 0700
            preds = []
            for model, name, size, timer, tmp_dir in zip(models, names, sizes, timers, tmp_dirs):
                outs = [_colorize(model, name, gt[lo:lo + size], timer) for lo in range(0, len(gt), size)]
                pred = outs[0] if len(outs) == 1 else torch.cat(outs)
                if tmp_dir is not None:
                    write_frames(tmp_dir, pred.permute(0, 2, 3, 1).cpu().numpy(), start=done)
                preds.append(pred)
            done += int(gt.shape[0])
            yield gt, preds
        for i, (save_dir, tmp_dir) in enumerate(zip(save_dirs, tmp_dirs)):
            if save_dir is not None and tmp_dir is not None:
                final = save_dir / clip.name
                if final.exists():
                    shutil.rmtree(final)
                os.replace(tmp_dir, final)
                tmp_dirs[i] = None
    finally:
        for tmp_dir in tmp_dirs:
            if tmp_dir is not None:
                shutil.rmtree(tmp_dir, ignore_errors=True)


def evaluate(model_name: str, bench: Benchmark, *, db: ResultsDB, model_options: Mapping[str, Any] | None = None,
             device: str | None = None, metrics: Sequence[str] | None = None, flow: str = "dis",
             save_frames: str | Path | None = None, force: bool = False, quiet: bool = False,
             allow_unverified_weights: bool = False, batch_size: int | None = None, cache_dir: str | Path | None = None,
             use_cache: bool = True, weights: str | Path | None = None) -> Evaluation:
    """Evaluate `model_name` on `bench`, record the run in `db` (or reuse an identical one).

    `weights` is the model's weight file or folder (`--weights`), recorded in the run; `flow` is an
    estimator name, a folder of precomputed flow, or `auto` (`vcbench.flow.registry.resolve_flow`)."""
    return evaluate_models([model_name], bench, db=db, model_options=model_options, device=device, metrics=metrics,
                           flow=flow, save_frames=save_frames, force=force, quiet=quiet,
                           allow_unverified_weights=allow_unverified_weights, batch_size=batch_size,
                           cache_dir=cache_dir, use_cache=use_cache, weights=weights)[0]


def evaluate_models(model_names: Sequence[str], bench: Benchmark, *, db: ResultsDB,
                    model_options: Mapping[str, Any] | None = None, device: str | None = None,
                    metrics: Sequence[str] | None = None, flow: str = "dis", save_frames: str | Path | None = None,
                    force: bool = False, quiet: bool = False, allow_unverified_weights: bool = False,
                    batch_size: int | None = None, cache_dir: str | Path | None = None, use_cache: bool = True,
                    weights: str | Path | None = None) -> list[Evaluation]:
    """Evaluate several models on `bench` in one pass; one `Evaluation` per model, in the given order.

    Each model is its own run, exactly as `evaluate` would record it alone (its identity, its record,
    an identical stored run reused, `force` rerunning it), but the GT clips are decoded once and the
    GT-side scoring is shared, so the numbers equal separate runs' and the GT costs are paid once.
    `model_options` go to every model (a model that does not take one is refused, as alone);
    `weights` (`--weights`) is for one model only. Every model is built and checked before any runs;
    a failure of any model during the pass records none of them."""
    names = check_model_list(model_names, weights)
    dev = resolve_device(device)
    flow = resolve_flow(flow)  # `auto`: the estimator it picks names the run's protocol and identity
    models = [build_model(name, dev, model_options or {}, allow_unverified_weights=allow_unverified_weights,
                          reference_mode=bench.reference_mode, weights=weights) for name in names]
    bad = [model.unverified_weights for model in models]
    for name, files in zip(names, bad):
        if files and not allow_unverified_weights:
            raise WeightsError(f"model {name!r} uses weights that could not be verified against the registry "
                               f"(sha256 differs, or a folder no published hash covers): {', '.join(files)}",
                               hint="replace them with `vcbench weights download`, or pass --allow-unverified-weights "
                                    "(the run is then marked unverified)")
    scorer = Scorer(metrics, device=dev, flow=flow, batch_size=batch_size, cache_dir=cache_dir, use_cache=use_cache,
                    allow_unverified_weights=allow_unverified_weights, progress=not quiet)
    records = [_run_record(name, model, files, scorer, bench, dev, weights)
               for name, model, files in zip(names, models, bad)]
    out: list[Evaluation | None] = [None] * len(names)
    for i, record in enumerate(records):
        stored = db.find(record.run_key)
        if stored is not None and not force:
            out[i] = Evaluation(stored, reused=True)
    todo = [i for i in range(len(names)) if out[i] is None]
    if todo:
        db.check_writable()  # a read-only database is refused now, not after the scoring
        with contextlib.ExitStack() as held:
            claims: dict[int, str] = {}
            # Claims are taken in run-key order, the same in every process, so no two wait on each other.
            for i in sorted(todo, key=lambda j: records[j].run_key):
                claim = wait_for_claim(db, records[i].run_key, force=force)
                if isinstance(claim, RunRecord):  # another process ran this identity meanwhile: its result is ours
                    out[i] = Evaluation(claim, reused=True)
                    continue
                held.enter_context(db.holding_claim(records[i].run_key, claim))
                claims[i] = claim
            run = sorted(claims)
            if run:
                results, fps = _run_and_score([models[i] for i in run], [names[i] for i in run], bench, scorer, dev,
                                              save_frames)
                for j, i in enumerate(run):
                    records[i].set_scores(results[j], fps[j])
                    db.record(records[i], replace=force, claim=claims[i])
                    out[i] = Evaluation(records[i], reused=False, result=results[j])
    return [ev for ev in out if ev is not None]


def check_model_list(model_names: Sequence[str], weights: str | Path | None = None) -> list[str]:
    """The models of one `evaluate_models` call: at least one, none twice, `--weights` with one only."""
    names = list(model_names)
    if not names:
        raise InputError("no model given", hint="name one or more models, e.g. --model gray,reinhard "
                                                "(see `vcbench models list`)")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"model {twice[0]!r} is listed twice", hint="list each model once")
    if weights is not None and len(names) > 1:
        raise InputError(f"--weights applies to one model, but {len(names)} are listed ({', '.join(names)})",
                         hint="evaluate the model that takes --weights on its own command")
    return names


def _run_record(model_name: str, model: Colorizer, bad: list[str], scorer: Scorer, bench: Benchmark,
                dev: torch.device, weights: str | Path | None) -> RunRecord:
    """The identity fields of one model's run (scores are filled in after the pass)."""
    proto = scorer.protocol()
    flow_record = dict(proto.get("flow") or {})
    identity = {
        "metrics": sorted(scorer.metric_names),
        "unavailable": sorted(scorer.unavailable),
        "metric_weights": dict(proto.get("weights", {})),
        "dataset_protocol": bench.protocol,
    }
    if weights is not None:
        identity["weights_path"] = str(Path(weights).expanduser().resolve())
    return RunRecord(
        model=model_name, dataset=bench.name, protocol=str(proto["name"]), model_config=model.config(),
        weights=digests(model.weights_used()), unverified_weights=bool(bad or proto.get("unverified_weights")),
        dataset_checksum=bench.checksum, flow=flow_record, reference_mode=bench.reference_mode,
        versions=package_versions(), device=device_description(dev), identity_extra=identity,
    )


def wait_for_claim(db: ResultsDB, key: str, *, force: bool = False, poll: float = 1.0,
                   log: Callable[[str], None] | None = None) -> str | RunRecord:
    """Become the one process running identity `key`: returns our claim token, or the stored run when
    another process recorded it while we waited (never with `force`, which waits and then reruns).

    A claim whose holder died (same host, pid gone) or stopped refreshing it is taken over."""
    say = log or (lambda text: print(f"vcbench: {text}", file=sys.stderr, flush=True))
    waiting = False
    while True:
        got = db.claim(key, reuse_recorded=not force)
        if got.state == "recorded":
            stored = db.get(int(got.run_id))  # type: ignore[arg-type]
            if stored is not None:
                if waiting:
                    say(f"the other run finished; reusing its result (run {stored.id})")
                return stored
            continue  # deleted in between: claim again
        if got.state == "acquired":
            if got.took_over:
                say(f"took over a stale claim on this run ({got.took_over}); running it here")
            return str(got.token)
        if not waiting:
            holder = got.holder
            say(f"another vcbench process ({holder.describe() if holder else '?'}) is running this same run "
                "(same model, options, weights, data and protocol); waiting for its result instead of repeating it")
            waiting = True
        time.sleep(poll)


def _run_and_score(models: Sequence[Colorizer], names: Sequence[str], bench: Benchmark, scorer: Scorer,
                   dev: torch.device, save_frames: str | Path | None) -> tuple[list[ScoreResult], list[float | None]]:
    """Run the models over every clip and score their output in one streaming pass: (result, model fps)
    per model. Each GT batch is decoded once for all models and the scorer (`_clip_pairs`)."""
    timers = [_Timer(dev) for _ in models]
    # DIR/<model>/<clip>/%05d.png: several models share one DIR (`vcbench plot --frames DIR`).
    save_dirs = [Path(save_frames) / name if save_frames is not None else None for name in names]
    items = ((clip, _clip_pairs(models, names, bench, clip, timers, save_dirs)) for clip in bench.clips)
    total = sum(c.num_frames() for c in bench.clips)
    with torch.inference_mode():
        results = scorer.score_pairs_many(items, len(models), total=total, labels=bench.labels or None,
                                          digest_of=bench.clip_digest)  # the checksum's digests: no GT file read twice
    for result in results:
        result.protocol["dataset"] = bench.protocol
        result.protocol["reference_mode"] = bench.reference_mode
    return results, [timer.fps for timer in timers]
