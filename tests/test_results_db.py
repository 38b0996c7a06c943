"""The results database: round trip, identity keys, replace-not-duplicate, atomicity, concurrency."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from vcbench.errors import VcbenchError
from vcbench.reports.db import SCHEMA_VERSION, ResultsDB, RunRecord, default_db_path, run_key


def make_run(model: str = "reinhard", *, clips: int = 3, frames: int = 4, offset: float = 0.0,
             config: dict | None = None) -> RunRecord:
    per_clip = {f"clip{i}": {"psnr": 20.0 + i + offset, "cdc": None} for i in range(clips)}
    per_frame = {f"clip{i}": {"psnr": [20.0 + i + offset + 0.1 * f for f in range(frames)]} for i in range(clips)}
    return RunRecord(
        model=model, model_config=config or {"size": 64}, weights={"w.pth": "ab" * 32},
        dataset="sample", dataset_checksum="c0ffee", protocol="vcbench-v1/dis",
        flow={"estimator": "dis", "params": {"preset": "medium"}}, reference_mode="first-frame",
        versions={"vcbench": "0.1.0", "torch": "2.14.1"}, device="cpu", fps=12.5,
        metrics={"psnr": 21.0 + offset, "cdc": None}, per_clip=per_clip, per_frame=per_frame,
        gt_metrics={"colorfulness": 30.0, "flicker": 2.0},
        gt_per_clip={f"clip{i}": {"colorfulness": 30.0 + i} for i in range(clips)},
        unavailable={"cdc": "clips shorter than 5 frames"}, n_clips=clips, n_frames=clips * frames,
    )


def test_round_trip_keeps_every_field(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    run = make_run()
    run_id = db.record(run)
    got = db.find(run.run_key)
    assert got is not None and got.id == run_id
    expected = run.to_dict()
    assert got.to_dict() == expected
    # runs() leaves per-frame values out unless asked, and filters
    listed = db.runs(dataset="sample", protocol="vcbench-v1/dis")
    assert [r.id for r in listed] == [run_id] and listed[0].per_frame == {}
    assert db.runs(dataset="sample", with_frames=True)[0].per_frame == run.per_frame
    assert db.runs(dataset="davis30") == [] and db.runs(protocol="vcbench-v1/raft") == []
    assert db.schema_version == SCHEMA_VERSION


def test_schema_is_plain_tables_and_wal(tmp_path):
    path = tmp_path / "r.sqlite"
    db = ResultsDB(path)
    db.record(make_run(clips=2, frames=3))
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert con.execute("SELECT count(*) FROM clip_metrics").fetchone()[0] == 4  # 2 clips x (psnr, cdc)
    assert con.execute("SELECT count(*) FROM frame_metrics").fetchone()[0] == 6
    assert con.execute("SELECT value FROM frame_metrics WHERE clip='clip1' AND frame=2").fetchone()[0] == \
        pytest.approx(21.2)
    assert con.execute("SELECT value FROM metrics WHERE metric='cdc'").fetchone()[0] is None
    con.close()
    assert len(db.clip_rows()) == 4 and len(db.frame_rows()) == 6
    assert db.frame_rows([]) == []


def test_run_key_is_identity_not_circumstance():
    a = make_run()
    b = make_run()
    b.device, b.fps, b.versions, b.created = "cuda", 99.0, {"torch": "9"}, "2030-01-01T00:00:00+00:00"
    assert a.run_key == b.run_key == a.identity_key()
    assert make_run(config={"size": 128}).run_key != a.run_key
    c = make_run()
    c.weights = {"w.pth": "cd" * 32}
    assert c.identity_key() != a.run_key
    assert run_key("m", {"a": 1, "b": 2}, {}, "d", "x", "p", {}, "r") == \
        run_key("m", {"b": 2, "a": 1}, {}, "d", "x", "p", {}, "r")
    assert a.model_id == b.model_id != make_run(config={"size": 1}).model_id


def test_record_uses_the_current_identity(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    run = make_run()
    stale = run.run_key
    run.identity_extra = {"metrics": ["psnr"]}  # changed after construction
    db.record(run)
    assert run.run_key != stale and db.find(stale) is None and db.find(run.run_key).id == run.id


def test_identical_run_refused_then_replaced_never_duplicated(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    first = db.record(make_run())
    with pytest.raises(VcbenchError, match="already recorded"):
        db.record(make_run(offset=1.0))
    assert [r.metrics["psnr"] for r in db.runs()] == [21.0]
    second = db.record(make_run(offset=1.0), replace=True)
    runs = db.runs()
    assert [r.id for r in runs] == [second] and second != first
    assert runs[0].metrics["psnr"] == 22.0
    assert db.delete(second) and not db.delete(second)
    assert db.runs() == [] and db.clip_rows() == [] and db.frame_rows() == []


def test_failed_transaction_leaves_nothing(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    bad = make_run()
    # a NaN frame value is fine (stored NULL), but a non-number fails mid-insert, after the runs row
    bad.per_frame["clip2"]["psnr"][3] = "not a number"  # type: ignore[index]
    with pytest.raises((ValueError, TypeError)):
        db.record(bad)
    con = sqlite3.connect(tmp_path / "r.sqlite")
    for table in ("runs", "metrics", "clip_metrics", "gt_clip_metrics", "frame_metrics"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    con.close()
    assert db.record(make_run()) > 0  # the database is still usable


def test_unserialisable_identity_is_a_clear_error(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    run = make_run()
    run.model_config = {"x": float("nan")}
    with pytest.raises(ValueError, match="plain JSON"):
        db.record(run)
    assert db.runs() == []


def _writer(path: str, model: str, n: int) -> None:
    db = ResultsDB(path, timeout=0.05, retries=60)  # short busy timeout: exercises the retry loop
    for i in range(n):
        db.record(make_run(model, clips=20, frames=30, config={"i": i}))


def test_two_processes_writing_at_once_both_land(tmp_path):
    path = str(tmp_path / "r.sqlite")  # not created beforehand: both processes also race to create the schema
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, f"model{k}", 5)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    runs = ResultsDB(path).runs()
    assert sorted((r.model, r.model_config["i"]) for r in runs) == \
        sorted((f"model{k}", i) for k in range(2) for i in range(5))
    assert len(ResultsDB(path).frame_rows()) == 10 * 20 * 30


def test_bad_paths_are_user_errors(tmp_path, monkeypatch):
    with pytest.raises(VcbenchError, match="folder"):
        ResultsDB(tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(VcbenchError, match="not a readable"):
        ResultsDB(junk)
    monkeypatch.setenv("VCBENCH_DB", str(tmp_path / "env.sqlite"))
    assert default_db_path() == tmp_path / "env.sqlite"
    monkeypatch.delenv("VCBENCH_DB")
    assert default_db_path().name == "results.sqlite" and "vcbench" in str(default_db_path())


def _record_big(path: str, started) -> None:
    db = ResultsDB(path)
    run = make_run("big", clips=50, frames=4000)  # 200k frame rows: takes a while to insert
    started.set()
    db.record(run)


def test_killed_writer_leaves_nothing_half_done(tmp_path):
    path = str(tmp_path / "r.sqlite")
    ResultsDB(path)
    ctx = mp.get_context("spawn")
    started = ctx.Event()
    proc = ctx.Process(target=_record_big, args=(path, started))
    proc.start()
    assert started.wait(60)
    import time

    time.sleep(0.1)
    proc.kill()
    proc.join(30)
    db = ResultsDB(path)
    runs = db.runs()
    n_frames = len(db.frame_rows())
    # all or nothing: either no trace of the run, or the complete run (if it finished before the kill)
    assert (runs == [] and n_frames == 0) or (len(runs) == 1 and n_frames == 50 * 4000)
    db.record(make_run())  # and the file is not left locked
