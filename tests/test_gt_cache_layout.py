"""The GT flow entry's compact layout (float32 flow + uint8 mask records) and the copies around it:
what is stored, that no entry of another layout is ever read for it, that record entries keep the
writer's crash safety, and that cold, warm and uncached runs give the same JSON, bit for bit."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from vcbench.cli import main
from vcbench.metrics import gt_cache
from vcbench.metrics.gt_cache import PART_SUFFIX, GTCache, rows_tensor
from vcbench.metrics.scorer import Scorer, _ClipCache

METRICS = ["warp_error", "flicker"]


def _flow_entries(cache: Path) -> list[Path]:
    return sorted((cache / "flow").glob("*.npy"))


def _score_json(pred: Path, gt: Path, out: Path, *extra: str) -> dict:
    rc = main(["score", "--pred", str(pred), "--gt", str(gt), "--metrics", ",".join(METRICS), "--json", str(out),
               "--quiet", *extra])
    assert rc == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("batch", [None, 4])
def test_cold_warm_and_uncached_json_are_identical(gt_pred_dirs, tmp_path, batch):
    """`vcbench score --metrics warp_error,flicker`: the run that writes the GT cache, the run that reads
    it and a --no-cache run write the same JSON (only protocol.gt_cache says on/off), with batches
    that split each clip (4: pairs straddle batches, so the warm run reads from row start-1) or not."""
    pred, gt = gt_pred_dirs
    cache = tmp_path / "cache"
    extra = ("--batch-size", str(batch)) if batch else ()
    cold = _score_json(pred, gt, tmp_path / "cold.json", "--cache-dir", str(cache), *extra)
    assert len(_flow_entries(cache)) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch.from_numpy on the read-only map: not taken
        warm = _score_json(pred, gt, tmp_path / "warm.json", "--cache-dir", str(cache), *extra)
    off = _score_json(pred, gt, tmp_path / "off.json", "--no-cache", *extra)
    assert cold["protocol"].pop("gt_cache") == "on" and warm["protocol"].pop("gt_cache") == "on"
    assert off["protocol"].pop("gt_cache") == "off"
    assert cold == warm == off
    assert json.dumps(cold, sort_keys=True) == json.dumps(warm, sort_keys=True) == json.dumps(off, sort_keys=True)
    assert all(v is not None for v in cold["metrics"].values())


def test_flow_entry_is_float32_flow_and_uint8_mask(gt_pred_dirs, tmp_path, sample_frames, monkeypatch):
    """9 bytes a pixel and pair (was 12: the mask as a third float32 channel); the records hold the
    very flow and mask the metrics were given on the cold run."""
    pred, gt = gt_pred_dirs
    cache = tmp_path / "cache"
    seen: dict[int, list] = {}
    real = _ClipCache.store

    def store(self, ctx, k):
        seen.setdefault(id(self), []).append((ctx.pairs.fw.clone(), ctx.pairs.noc.clone()))
        real(self, ctx, k)

    monkeypatch.setattr(_ClipCache, "store", store)
    Scorer(METRICS, cache_dir=cache, progress=False, batch_size=4).score_dirs(pred, gt)
    entries = _flow_entries(cache)
    assert len(entries) == 2
    by_size = {}
    for entry in entries:
        arr = np.load(entry, mmap_mode="r")
        h, w = arr["fw"].shape[-2:]
        by_size[(h, w)] = arr  # the two clips differ in size
        assert arr.dtype.names == ("fw", "noc")
        assert arr["fw"].dtype == np.float32 and arr["noc"].dtype == np.uint8
        assert arr["fw"].shape[1:] == (2, h, w) and arr["noc"].shape[1:] == (1, h, w)
        header = entry.stat().st_size - arr.shape[0] * 9 * h * w
        assert 0 < header <= 4096  # the .npy header, nothing else
        assert set(np.unique(arr["noc"])) <= {0, 1} and arr["noc"].min() == 0 and arr["noc"].max() == 1
    # each clip's stored rows are the cold run's tensors (the pairs of every batch, in order)
    got = []
    for batches in seen.values():
        fw = torch.cat([b[0] for b in batches])
        noc = torch.cat([b[1] for b in batches])
        arr = by_size[tuple(fw.shape[-2:])]
        assert arr.shape == (fw.shape[0],)
        assert torch.equal(torch.from_numpy(np.array(arr["fw"])), fw)
        assert torch.equal(torch.from_numpy(np.array(arr["noc"])).float(), noc)
        got.append(fw.shape[0])
    assert sorted(got) == sorted(len(f) - 1 for f in sample_frames.values())


def test_an_entry_of_another_layout_is_never_read(gt_pred_dirs, tmp_path, monkeypatch):
    """The former layout, float32 (n-1, 3, H, W) with the same row count, put under the new key:
    refused (a miss), the flow is computed again and the entry rewritten in the new layout; and the
    layout is part of the key, so entries written before the change are not even looked up."""
    pred, gt = gt_pred_dirs
    cache = tmp_path / "cache"
    ref = Scorer(METRICS, use_cache=False, progress=False).score_dirs(pred, gt)
    Scorer(METRICS, cache_dir=cache, progress=False).score_dirs(pred, gt)
    entries = _flow_entries(cache)
    for entry in entries:
        arr = np.load(entry, mmap_mode="r")
        old = np.zeros((arr.shape[0], 3, *arr["fw"].shape[-2:]), np.float32)
        old[:, 2] = 1.0  # zero flow, everything valid: a misread would change every value
        np.save(entry, old)
    again = Scorer(METRICS, cache_dir=cache, progress=False)
    res = again.score_dirs(pred, gt)
    assert (again.cache.hits, again.cache.misses) == (2, 2)  # the GT flicker rows hit, both flow entries miss
    assert res.per_frame == ref.per_frame and res.metrics == ref.metrics and res.gt_metrics == ref.gt_metrics
    assert [np.load(e, mmap_mode="r").dtype.names for e in _flow_entries(cache)] == [("fw", "noc")] * 2

    class Layout(_ClipCache):
        FLOW_LAYOUT = _ClipCache.FLOW_LAYOUT + " (another)"

    import vcbench.metrics.scorer as scorer

    monkeypatch.setattr(scorer, "_ClipCache", Layout)
    other = Scorer(METRICS, cache_dir=cache, progress=False)
    other.score_dirs(pred, gt)
    assert (other.cache.hits, other.cache.misses) == (2, 2)
    assert len(_flow_entries(cache)) == 4  # other keys: two new entries beside the two before


def test_load_as_refuses_other_dtypes_and_shapes(tmp_path):
    cache = GTCache(tmp_path)
    rec = np.dtype([("a", "<f4", (2,)), ("b", "u1", (1,))])
    w = cache.writer("flow", "f" * 40, (3,), rec)
    w.write_fields(np.arange(6, dtype=np.float32).reshape(3, 2), np.array([[1], [0], [1]], np.uint8))
    w.commit()
    assert cache.load_as("flow", "f" * 40, np.dtype(np.float32), (3,)) is None
    assert cache.load_as("flow", "f" * 40, rec, (4,)) is None
    assert (cache.hits, cache.misses) == (0, 2)
    arr = cache.load_as("flow", "f" * 40, rec, (3,))
    assert (cache.hits, cache.misses) == (1, 2)
    assert arr["a"].tolist() == [[0, 1], [2, 3], [4, 5]] and arr["b"].tolist() == [[1], [0], [1]]


def test_write_fields_interleaves_rows_from_separate_arrays(tmp_path):
    """Several calls, each field from its own array (a non-contiguous one is made contiguous); the
    file is what np.save of the assembled records writes, byte for byte."""
    rec = np.dtype([("fw", "<f4", (2, 3, 4)), ("noc", "u1", (1, 3, 4))])
    rng = np.random.default_rng(0)
    fw = rng.standard_normal((5, 2, 3, 4)).astype(np.float32)
    noc = (rng.random((5, 1, 3, 4)) > 0.5).astype(np.uint8)
    w = gt_cache.ArrayWriter(tmp_path / "e.npy", (5,), rec)
    w.write_fields(fw[:2], noc[:2])
    w.write_fields(np.asfortranarray(fw[2:]), noc[2:])
    w.commit()
    want = np.empty(5, rec)
    want["fw"], want["noc"] = fw, noc
    np.save(tmp_path / "want.npy", want)
    assert (tmp_path / "e.npy").read_bytes() == (tmp_path / "want.npy").read_bytes()


def test_writer_rejects_rows_that_do_not_fit(tmp_path):
    rec = np.dtype([("fw", "<f4", (2, 2)), ("noc", "u1", (1, 2))])
    w = gt_cache.ArrayWriter(tmp_path / "e.npy", (2,), rec)
    with pytest.raises(TypeError, match="write_fields"):
        w.write(np.zeros((1,), rec))
    with pytest.raises(TypeError, match="2 field arrays"):
        w.write_fields(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="do not fit"):
        w.write_fields(np.zeros((1, 2, 2), np.float32), np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="do not fit"):
        w.write_fields(np.zeros((3, 2, 2), np.float32), np.zeros((3, 1, 2), np.uint8))
    with pytest.raises(ValueError, match="got 0 of 2 rows"):
        w.commit()
    assert list(tmp_path.iterdir()) == []
    padded = np.dtype({"names": ["a", "b"], "formats": ["<f4", "u1"], "offsets": [0, 8], "itemsize": 12})
    with pytest.raises(ValueError, match="padding"):
        gt_cache.ArrayWriter(tmp_path / "p.npy", (1,), padded)
    plain = gt_cache.ArrayWriter(tmp_path / "q.npy", (2, 2), np.float32)
    with pytest.raises(TypeError):
        plain.write_fields(np.zeros((1, 2), np.float32))
    plain.abort()


@pytest.mark.parametrize("mode", ["anonymous", "named"])
def test_record_write_failing_mid_row_leaves_nothing(tmp_path, monkeypatch, mode):
    """A full disk between a row's flow and its mask: the one-line error, and no file is left."""
    from vcbench.errors import VcbenchError

    if mode == "named":
        monkeypatch.setattr(gt_cache, "_anonymous_file", lambda folder: None)
    rec = np.dtype([("fw", "<f4", (2, 4, 4)), ("noc", "u1", (1, 4, 4))])
    w = GTCache(tmp_path).writer("flow", "g" * 40, (3,), rec)

    class FullAfterOne:
        def __init__(self, fh):
            self.fh, self.calls = fh, 0

        def write(self, data):
            self.calls += 1
            if self.calls > 1:
                raise OSError(28, "No space left on device")
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

    w._fh = FullAfterOne(w._fh)
    with pytest.raises(VcbenchError, match="no space left"):
        w.write_fields(np.ones((2, 2, 4, 4), np.float32), np.ones((2, 1, 4, 4), np.uint8))
    w.abort()
    assert list((tmp_path / "flow").iterdir()) == [] and not list(tmp_path.rglob(f"*{PART_SUFFIX}"))
    assert GTCache(tmp_path).load("flow", "g" * 40, 3) is None


def test_rows_tensor_copies_once_without_warning(tmp_path):
    """A field of a read-only map becomes a writable, contiguous tensor of the asked dtype, no warning."""
    rec = np.dtype([("fw", "<f4", (2, 2, 3)), ("noc", "u1", (1, 2, 3))])
    data = np.zeros(4, rec)
    data["fw"] = np.arange(48, dtype=np.float32).reshape(4, 2, 2, 3)
    data["noc"] = np.arange(24).reshape(4, 1, 2, 3) % 2
    np.save(tmp_path / "e.npy", data)
    arr = np.load(tmp_path / "e.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fw = rows_tensor(arr[1:3]["fw"])
        noc = rows_tensor(arr[1:3]["noc"], torch.float32)
    assert fw.dtype == torch.float32 and fw.is_contiguous() and torch.equal(fw, torch.from_numpy(np.array(data["fw"][1:3])))
    assert noc.dtype == torch.float32 and noc.is_contiguous()
    assert torch.equal(noc, torch.from_numpy(data["noc"][1:3].astype(np.float32)))
    fw += 1  # writable, and not the map
    assert arr["fw"][1, 0, 0, 0] == 12.0
    with pytest.raises(TypeError):
        rows_tensor(arr["fw"], torch.uint8)  # a narrowing conversion is refused, never rounded
