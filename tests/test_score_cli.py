"""`vcbench score` end to end, the GT-side cache, and the Python API (MetricSuite) giving the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vcbench.cli import main
from vcbench.frames import list_clips, read_image, write_frames
from vcbench.metrics import MetricSuite
from vcbench.metrics.scorer import Scorer

NO_WEIGHTS = ["psnr", "ssim", "colorfulness", "cdc", "warp_error", "flicker"]


def cli(pred: Path, gt: Path, *extra: str) -> int:
    return main(["score", "--pred", str(pred), "--gt", str(gt), *extra])


def test_table_and_json_file(gt_pred_dirs, tmp_path, capsys):
    pred, gt = gt_pred_dirs
    out = tmp_path / "res" / "scores.json"
    rc = cli(pred, gt, "--metrics", "psnr,colorfulness,flicker", "--json", str(out), "--quiet",
             "--cache-dir", str(tmp_path / "cache"))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err == ""  # --quiet: no progress bar
    doc = json.loads(out.read_text())
    table = captured.out
    assert "psnr" in table and "higher better" in table and "closer to GT" in table and "ratio" in table
    assert f"{doc['metrics']['psnr']:.6g}" in table
    assert "vcbench-v1/dis" in table and "2 clips, 20 frames" in table
    direct = Scorer(["psnr", "colorfulness", "flicker"], use_cache=False, progress=False).score_dirs(pred, gt)
    assert doc == json.loads(direct.dumps()) | {"protocol": doc["protocol"]}
    assert doc["protocol"]["gt_cache"] == "on"


def test_json_to_stdout_and_progress_bar(gt_pred_dirs, capsys):
    pred, gt = gt_pred_dirs
    assert cli(pred, gt, "--metrics", "psnr", "--json", "-", "--no-cache") == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout holds only the JSON
    assert doc["n_frames"] == 20 and doc["protocol"]["gt_cache"] == "off"
    assert "scoring" in captured.err and "psnr" in captured.err  # progress bar and table on stderr


def _feed_suite(suite: MetricSuite, pred: Path, gt: Path, batch: int) -> None:
    for clip in list_clips(gt):
        g = np.stack([read_image(p) for p in clip.frame_paths()])
        p = np.stack([read_image(q) for q in sorted((pred / clip.name).iterdir())])
        suite.next_clip(clip.name)
        for lo in range(0, len(g), batch):
            # a training loop holds channel-first uint8 tensors
            suite.update(torch.from_numpy(p[lo:lo + batch]).permute(0, 3, 1, 2),
                         torch.from_numpy(g[lo:lo + batch]).permute(0, 3, 1, 2))
        suite.end_clip(clip.name)


def test_metric_suite_gives_the_cli_numbers(gt_pred_dirs, tmp_path, capsys):
    pred, gt = gt_pred_dirs
    out = tmp_path / "s.json"
    assert cli(pred, gt, "--metrics", ",".join(NO_WEIGHTS), "--json", str(out), "--quiet", "--no-cache",
               "--batch-size", "4") == 0
    capsys.readouterr()
    doc = json.loads(out.read_text())
    suite = MetricSuite(NO_WEIGHTS)
    _feed_suite(suite, pred, gt, batch=3)
    values = suite.compute()
    for name in NO_WEIGHTS:
        assert values[name] == pytest.approx(doc["metrics"][name], rel=1e-9, abs=1e-12), name
    res = suite.result()
    for clip, d in doc["per_clip"].items():
        for name, v in d.items():
            assert res.per_clip[clip][name] == pytest.approx(v, rel=1e-9, abs=1e-12), (clip, name)
    assert res.gt_metrics == pytest.approx(doc["gt_metrics"], rel=1e-9)


from vcbench.flow.base import FlowEstimator  # noqa: E402


class CountingFlow(FlowEstimator):
    """A user-supplied estimator: vcbench's DIS, counting the flow fields it computes (no core code mocked)."""

    def __init__(self):
        from vcbench.flow.registry import get_estimator

        super().__init__("cpu")
        self.inner = get_estimator("dis", "cpu")
        self.name, self.params = self.inner.name, self.inner.params
        self.calls = 0

    def _flow(self, a, b):
        self.calls += int(a.shape[0])
        return self.inner._flow(a, b)


def test_gt_cache_is_reused_and_changes_nothing(gt_pred_dirs, tmp_path, sample_frames, monkeypatch):
    pred, gt = gt_pred_dirs
    cache = tmp_path / "cache"
    metrics = ["warp_error", "flicker", "psnr"]
    flow = CountingFlow()
    first = Scorer(metrics, flow=flow, cache_dir=cache, progress=False).score_dirs(pred, gt)
    assert flow.calls > 0
    assert len(list((cache / "flow").glob("*.npy"))) == 2  # one entry per GT clip

    # a second model on the same GT: its own frames only, no GT flow recomputed
    from conftest import degrade

    pred2 = tmp_path / "pred2"
    for i, (name, frames) in enumerate(sample_frames.items()):
        write_frames(pred2 / name, degrade(frames, "hue", seed=10 + i))
    flow.calls = 0
    import vcbench.metrics.temporal as temporal

    warped: list[int] = []
    real_flicker = temporal.flicker_pairs
    monkeypatch.setattr(temporal, "flicker_pairs", lambda a, b, p: warped.append(a.shape[0]) or real_flicker(a, b, p))
    second = Scorer(metrics, flow=flow, cache_dir=cache, progress=False).score_dirs(pred2, gt)
    assert flow.calls == 0
    assert sum(warped) == sum(len(f) - 1 for f in sample_frames.values())  # the prediction's pairs only
    assert second.gt_metrics["flicker"] == first.gt_metrics["flicker"]  # the GT's own, from the cache
    again = Scorer(metrics, flow=flow, cache_dir=cache, progress=False, batch_size=3).score_dirs(pred, gt)
    assert flow.calls == 0

    # identical numbers with and without the cache (same batch size: reductions over a different batch
    # split may differ in the last bit, which test_scorer's batch-size test bounds)
    for res, p, bs in ((first, pred, 8), (second, pred2, 8), (again, pred, 3)):
        ref = Scorer(metrics, progress=False, use_cache=False, batch_size=bs).score_dirs(p, gt)
        assert res.per_frame == ref.per_frame and res.metrics == ref.metrics and res.gt_metrics == ref.gt_metrics

    # a changed GT frame is a different key: that clip's flow is recomputed, the other is reused
    frame = gt / "bikes" / "00003.png"
    img = read_image(frame).copy()
    img[0, 0] ^= 1
    write_frames(gt / "bikes", [img], start=3)
    Scorer(metrics, flow=flow, cache_dir=cache, progress=False).score_dirs(pred, gt)
    assert flow.calls == 2 * 9  # forward + backward for the 9 pairs of bikes only


def test_cache_entries_are_complete_or_absent(gt_pred_dirs, tmp_path):
    """An interrupted clip leaves no cache entry (the writer renames only complete files)."""
    pred, gt = gt_pred_dirs
    cache = tmp_path / "cache"
    bad = pred / "bikes" / "00007.png"
    bad.write_bytes(b"not a png")
    from vcbench.errors import InputError

    with pytest.raises(InputError, match="00007.png"):
        Scorer(["warp_error"], cache_dir=cache, progress=False).score_dirs(pred, gt)
    files = sorted(p.name for p in (cache / "flow").iterdir())
    assert len(files) == 1 and files[0].endswith(".npy")  # bigbuckbunny finished; bikes left nothing


def test_gt_feature_cache_inception_and_classifier(tmp_path, sample_frames, weights_home, monkeypatch):
    """GT Inception features and GT classifier labels are cached per clip and reused; numbers unchanged."""
    import cv2

    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for name, frames in sample_frames.items():
        small = np.stack([cv2.resize(f, (64, 40), interpolation=cv2.INTER_AREA) for f in frames[:3]])
        write_frames(gt / name, small)
        write_frames(pred / name, np.ascontiguousarray(small[..., ::-1]))  # channel swap: a wrong colourisation
    cache = tmp_path / "cache"
    kw = dict(batch_size=2, allow_unverified_weights=True, progress=False)
    metrics = ["kid", "top1", "top5", "lpips"]
    first = Scorer(metrics, cache_dir=cache, **kw)
    a = first.score_dirs(pred, gt)
    assert not a.unavailable
    assert first.cache.hits == 0
    assert len(list((cache / "inception_pool3").glob("*.npy"))) == 2
    assert len(list((cache / "vgg19_gt_top1").glob("*.npy"))) == 2
    second = Scorer(metrics, cache_dir=cache, **kw)
    b = second.score_dirs(pred, gt)
    assert second.cache.hits == 4 and second.cache.misses == 0  # 2 clips x (features, labels)
    c = Scorer(metrics, use_cache=False, **kw).score_dirs(pred, gt)
    assert a.metrics == b.metrics == c.metrics and a.per_frame == b.per_frame == c.per_frame
    # warm, the networks see the prediction's frames only: no GT frame goes through Inception or VGG19
    import vcbench.metrics.network as network

    seen: list[int] = []
    real = network.forward_in_chunks

    def counting(net, frames, *args, **kwargs):
        seen.append(int(frames.shape[0]))
        return real(net, frames, *args, **kwargs)

    import vcbench.metrics.classification as classification
    import vcbench.metrics.inception as inception

    for mod in (inception, classification):
        monkeypatch.setattr(mod, "forward_in_chunks", counting)
    Scorer(metrics, cache_dir=cache, **kw).score_dirs(pred, gt)
    assert sum(seen) == 2 * 3 * 2  # 2 clips x 3 predicted frames, once through each of the two networks
    # the key carries the weights' sha256: other weights are a miss, not a stale hit
    target = weights_home / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    state = torch.load(target, weights_only=True)
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = state[key] + 0.5
    target.unlink()  # a link to the session's file: replace it, never write through it
    torch.save(state, target)
    third = Scorer(["kid"], cache_dir=cache, **kw)
    third.score_dirs(pred, gt)
    assert third.cache.hits == 0


def test_missing_flow_weights_make_temporal_metrics_unavailable(gt_pred_dirs, torch_home):
    pred, gt = gt_pred_dirs
    res = Scorer(["psnr", "warp_error", "flicker"], flow="raft", use_cache=False, progress=False).score_dirs(pred, gt)
    assert set(res.unavailable) == {"warp_error", "flicker"}
    assert all("vcbench weights download" in r for r in res.unavailable.values()), res.unavailable
    assert res.metrics["psnr"] is not None and res.metrics["warp_error"] is None
    assert res.protocol["name"] == "vcbench-v1/raft"
