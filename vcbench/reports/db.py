"""The results database: every `vcbench evaluate` run, its identity and its per-clip/per-frame values.

SQLite because it is one file a user can copy, query and share, with no server. Several evaluations
may write at once (one per GPU, or a cluster array job writing to a shared disk), so the database
runs in WAL mode with a busy timeout, and every write transaction is retried with backoff when the
file is locked. A run is written in ONE transaction: an interrupted or failed run leaves nothing.

Per-clip and per-frame values live in their own narrow tables (`clip_metrics`, `frame_metrics`) so
that exporting them, or bootstrapping over clips, is a plain query rather than JSON parsing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sqlite3
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeVar

from vcbench.errors import VcbenchError

SCHEMA_VERSION = 1
DB_FILENAME = "results.sqlite"

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    run_key            TEXT NOT NULL UNIQUE,
    model              TEXT NOT NULL,
    model_config       TEXT NOT NULL,
    weights            TEXT NOT NULL,
    unverified_weights INTEGER NOT NULL,
    dataset            TEXT NOT NULL,
    dataset_checksum   TEXT NOT NULL,
    protocol           TEXT NOT NULL,
    flow               TEXT NOT NULL,
    reference_mode     TEXT NOT NULL,
    versions           TEXT NOT NULL,
    device             TEXT NOT NULL,
    fps                REAL,
    gt_metrics         TEXT NOT NULL,
    unavailable        TEXT NOT NULL,
    identity_extra     TEXT NOT NULL,
    n_clips            INTEGER NOT NULL,
    n_frames           INTEGER NOT NULL,
    created            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_dataset_protocol ON runs (dataset, protocol);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    value  REAL,
    PRIMARY KEY (run_id, metric)
);
CREATE TABLE IF NOT EXISTS clip_metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    clip   TEXT NOT NULL,
    metric TEXT NOT NULL,
    value  REAL,
    PRIMARY KEY (run_id, clip, metric)
);
CREATE TABLE IF NOT EXISTS gt_clip_metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    clip   TEXT NOT NULL,
    metric TEXT NOT NULL,
    value  REAL,
    PRIMARY KEY (run_id, clip, metric)
);
CREATE TABLE IF NOT EXISTS frame_metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    clip   TEXT NOT NULL,
    metric TEXT NOT NULL,
    frame  INTEGER NOT NULL,
    value  REAL,
    PRIMARY KEY (run_id, clip, metric, frame)
);
"""

_JSON_COLUMNS = ("model_config", "weights", "flow", "versions", "gt_metrics", "unavailable", "identity_extra")
_RUN_COLUMNS = (
    "run_key", "model", "model_config", "weights", "unverified_weights", "dataset", "dataset_checksum",
    "protocol", "flow", "reference_mode", "versions", "device", "fps", "gt_metrics", "unavailable",
    "identity_extra", "n_clips", "n_frames", "created",
)


def _canonical_json(obj: Any) -> str:
    """Key-sorted compact JSON: the same content always gives the same bytes (and hash)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _clean(value: Any) -> float | None:
    """SQLite has no NaN (it becomes NULL anyway); store undefined values as NULL explicitly."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def run_key(
    model: str,
    model_config: Mapping[str, Any],
    weights: Mapping[str, str],
    dataset: str,
    dataset_checksum: str,
    protocol: str,
    flow: Mapping[str, Any],
    reference_mode: str,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """sha256 of what makes two runs the same run: rerunning it would give the same numbers.

    Device, speed, package versions and the time are left out on purpose: they describe *how* a run
    went, not *what* was measured. `extra` carries anything else the caller treats as identity
    (e.g. the metric list or a frame limit).
    """
    ident = {
        "model": model,
        "model_config": dict(model_config),
        "weights": dict(weights),
        "dataset": dataset,
        "dataset_checksum": dataset_checksum,
        "protocol": protocol,
        "flow": dict(flow),
        "reference_mode": reference_mode,
        "extra": dict(extra or {}),
    }
    return hashlib.sha256(_canonical_json(ident).encode("ascii")).hexdigest()


def model_identity(model: str, model_config: Mapping[str, Any], weights: Mapping[str, str]) -> str:
    """A short stable id for "the same model": name, configuration and weight hashes."""
    blob = _canonical_json({"model": model, "model_config": dict(model_config), "weights": dict(weights)})
    return hashlib.sha256(blob.encode("ascii")).hexdigest()[:12]


def utc_now() -> str:
    """ISO-8601 UTC timestamp with microseconds, so records sort by creation time as strings."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass
class RunRecord:
    """One evaluation run as plain data (what `vcbench evaluate` records and the reports read).

    `per_clip` / `per_frame` hold the model's values; `gt_metrics` the GT's own dataset values
    (colorfulness, flicker) and `gt_per_clip` the GT's per-clip values, which colourfulness ranking
    (closeness to GT, per clip) and paired tests need. `run_key` is filled from the identity fields
    when left empty, and `ResultsDB.record` always recomputes it. `id` is the database row id once
    recorded (None before).
    """

    model: str
    dataset: str
    protocol: str
    model_config: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)
    unverified_weights: bool = False
    dataset_checksum: str = ""
    flow: dict[str, Any] = field(default_factory=dict)
    reference_mode: str = "first-frame"
    versions: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    fps: float | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    per_clip: dict[str, dict[str, float | None]] = field(default_factory=dict)
    per_frame: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    gt_metrics: dict[str, Any] = field(default_factory=dict)
    gt_per_clip: dict[str, dict[str, float | None]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    identity_extra: dict[str, Any] = field(default_factory=dict)
    n_clips: int = 0
    n_frames: int = 0
    created: str = field(default_factory=utc_now)
    run_key: str = ""
    id: int | None = None

    def identity_key(self) -> str:
        """The run key computed from this record's identity fields (see `run_key`)."""
        return run_key(self.model, self.model_config, self.weights, self.dataset, self.dataset_checksum,
                       self.protocol, self.flow, self.reference_mode, self.identity_extra)

    def __post_init__(self) -> None:
        if not self.run_key:
            self.run_key = self.identity_key()

    @property
    def model_id(self) -> str:
        """Short id of (model, config, weights): the leaderboard keeps the latest run per model_id."""
        return model_identity(self.model, self.model_config, self.weights)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunRecord":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def default_db_path() -> Path:
    """`$VCBENCH_DB` if set, else `<platform user data dir>/vcbench/results.sqlite`."""
    env = os.environ.get("VCBENCH_DB")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("vcbench")) / DB_FILENAME


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


class ResultsDB:
    """SQLite store of `RunRecord`s; safe for several writer processes at once.

    Each method opens its own short-lived connection, so a `ResultsDB` can be passed to worker
    processes and holds no lock between calls.
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0, retries: int = 8) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.timeout = timeout
        self.retries = retries
        if self.path.exists() and self.path.is_dir():
            raise VcbenchError("is a folder, not a results database", path=self.path,
                               hint="pass a file name to --db, e.g. results.sqlite")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VcbenchError(f"cannot create the folder for the results database ({exc.strerror})",
                               path=self.path, hint="choose another location with --db") from exc
        try:  # SQLite creates its file 0644 whatever the umask; created here it gets the umask's mode
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError:
            pass  # it exists, or cannot be created: SQLite reports that below
        self._with_retry(self._init_schema)

    # -- connection plumbing -------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise VcbenchError(f"cannot open the results database ({exc})", path=self.path,
                               hint="check the path and its permissions, or choose another with --db") from exc
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _with_retry(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `fn(conn)`; on "database is locked" retry with exponential backoff and jitter."""
        delay = 0.05
        for attempt in range(self.retries + 1):
            conn = self._connect()
            try:
                return fn(conn)
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or attempt == self.retries:
                    if _is_locked(exc):
                        raise VcbenchError("the results database stayed locked by another process", path=self.path,
                                           hint="wait for the other vcbench run to finish, then rerun") from exc
                    raise
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)):
                    raise
                raise VcbenchError(f"not a readable vcbench results database ({exc})", path=self.path,
                                   hint="point --db at another file or move this one away") from exc
            finally:
                conn.close()
            time.sleep(delay * (1.0 + random.random()))
            delay = min(delay * 2.0, 2.0)
        raise AssertionError("unreachable")

    @staticmethod
    def _transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """BEGIN IMMEDIATE takes the write lock up front (no upgrade deadlock); rollback on any error."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # e.g. a network file system that refuses WAL: still correct, slower
            conn.execute("PRAGMA journal_mode = DELETE")

        def body(c: sqlite3.Connection) -> None:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            row = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                c.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise VcbenchError(f"results database has schema version {row[0]}, newer than this vcbench "
                                   f"understands ({SCHEMA_VERSION})", path=self.path,
                                   hint="upgrade vcbench or use another --db")

        self._transaction(conn, body)

    @property
    def schema_version(self) -> int:
        return self._with_retry(
            lambda c: int(c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]))

    # -- writing ---------------------------------------------------------------------------------
    def record(self, run: RunRecord, *, replace: bool = False) -> int:
        """Store `run` and all its values in one transaction; returns the new run id.

        A run whose `run_key` is already stored is refused unless `replace=True`, which deletes the old
        run inside the same transaction (so `--force` never leaves zero or two copies).
        """
        try:
            key = run.identity_key()  # recomputed: identity fields set after construction must count
        except (TypeError, ValueError) as exc:
            raise ValueError(f"run record for {run.model!r} holds a value that is not plain JSON data: {exc}") from exc
        row = self._run_row(run, key)

        def body(c: sqlite3.Connection) -> int:
            # Rows are generated while inserting (per-frame data can be large); any failure part-way
            # rolls the whole run back, the `runs` row included.
            old = c.execute("SELECT id FROM runs WHERE run_key = ?", (key,)).fetchone()
            if old is not None:
                if not replace:
                    raise VcbenchError(f"an identical run is already recorded (run id {old[0]})", path=self.path,
                                       hint="pass --force to replace it")
                c.execute("DELETE FROM runs WHERE id = ?", (old[0],))
            cur = c.execute(f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) "
                            f"VALUES ({', '.join('?' * len(_RUN_COLUMNS))})", row)
            run_id = int(cur.lastrowid)
            c.executemany("INSERT INTO metrics (run_id, metric, value) VALUES (?, ?, ?)",
                          ((run_id, m, _clean(v)) for m, v in run.metrics.items()))
            c.executemany("INSERT INTO clip_metrics (run_id, clip, metric, value) VALUES (?, ?, ?, ?)",
                          ((run_id, clip, m, _clean(v)) for clip, vals in run.per_clip.items()
                           for m, v in vals.items()))
            c.executemany("INSERT INTO gt_clip_metrics (run_id, clip, metric, value) VALUES (?, ?, ?, ?)",
                          ((run_id, clip, m, _clean(v)) for clip, vals in run.gt_per_clip.items()
                           for m, v in vals.items()))
            c.executemany("INSERT INTO frame_metrics (run_id, clip, metric, frame, value) VALUES (?, ?, ?, ?, ?)",
                          ((run_id, clip, m, i, _clean(v)) for clip, vals in run.per_frame.items()
                           for m, series in vals.items() for i, v in enumerate(series)))
            return run_id

        run_id = self._with_retry(lambda c: self._transaction(c, body))
        run.id = run_id
        run.run_key = key
        return run_id

    @staticmethod
    def _run_row(run: RunRecord, key: str) -> tuple:
        try:
            data = {name: getattr(run, name) for name in _RUN_COLUMNS}
            data["run_key"] = key
            for name in _JSON_COLUMNS:
                data[name] = _canonical_json(data[name])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"run record for {run.model!r} holds a value that is not plain JSON data: {exc}") from exc
        data["unverified_weights"] = int(bool(run.unverified_weights))
        data["fps"] = _clean(run.fps)
        data["n_clips"] = int(run.n_clips)
        data["n_frames"] = int(run.n_frames)
        return tuple(data[name] for name in _RUN_COLUMNS)

    def delete(self, run_id: int) -> bool:
        """Delete one run and all its values (one transaction); True if it existed."""
        def body(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM runs WHERE id = ?", (int(run_id),)).rowcount > 0

        return self._with_retry(lambda c: self._transaction(c, body))

    # -- reading ---------------------------------------------------------------------------------
    def find(self, key: str) -> RunRecord | None:
        """The recorded run with this `run_key` (with per-frame values), or None."""
        def body(c: sqlite3.Connection) -> RunRecord | None:
            row = c.execute("SELECT * FROM runs WHERE run_key = ?", (key,)).fetchone()
            return None if row is None else self._load(c, row, with_frames=True)

        return self._with_retry(body)

    def get(self, run_id: int, *, with_frames: bool = True) -> RunRecord | None:
        """The run with this row id, or None."""
        def body(c: sqlite3.Connection) -> RunRecord | None:
            row = c.execute("SELECT * FROM runs WHERE id = ?", (int(run_id),)).fetchone()
            return None if row is None else self._load(c, row, with_frames=with_frames)

        return self._with_retry(body)

    def runs(self, dataset: str | None = None, protocol: str | None = None, *,
             model: str | None = None, with_frames: bool = False) -> list[RunRecord]:
        """Recorded runs, oldest first, optionally filtered; per-frame values only when asked
        (they are the bulk of the database and tables do not need them)."""
        where, params = [], []
        for col, val in (("dataset", dataset), ("protocol", protocol), ("model", model)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY created, id"

        def body(c: sqlite3.Connection) -> list[RunRecord]:
            return [self._load(c, row, with_frames=with_frames) for row in c.execute(sql, params).fetchall()]

        return self._with_retry(body)

    def clip_rows(self, run_ids: Iterable[int] | None = None) -> list[tuple]:
        """(run_id, model, dataset, protocol, clip, metric, value) rows for per-clip export."""
        return self._value_rows("clip_metrics", "", run_ids)

    def frame_rows(self, run_ids: Iterable[int] | None = None) -> list[tuple]:
        """(run_id, model, dataset, protocol, clip, metric, frame, value) rows for per-frame export."""
        return self._value_rows("frame_metrics", "v.frame, ", run_ids)

    def _value_rows(self, table: str, extra_col: str, run_ids: Iterable[int] | None) -> list[tuple]:
        sql = (f"SELECT r.id, r.model, r.dataset, r.protocol, v.clip, v.metric, {extra_col}v.value "
               f"FROM {table} v JOIN runs r ON r.id = v.run_id")
        params: list[int] = []
        if run_ids is not None:
            params = [int(i) for i in run_ids]
            if not params:
                return []
            sql += f" WHERE r.id IN ({', '.join('?' * len(params))})"
        sql += " ORDER BY r.id, v.clip, v.metric" + (", v.frame" if extra_col else "")
        return self._with_retry(lambda c: [tuple(row) for row in c.execute(sql, params).fetchall()])

    @staticmethod
    def _load(c: sqlite3.Connection, row: sqlite3.Row, *, with_frames: bool) -> RunRecord:
        data = dict(row)
        run_id = data.pop("id")
        for name in _JSON_COLUMNS:
            data[name] = json.loads(data[name])
        data["unverified_weights"] = bool(data["unverified_weights"])
        data["metrics"] = {m: v for m, v in c.execute(
            "SELECT metric, value FROM metrics WHERE run_id = ? ORDER BY rowid", (run_id,))}
        per_clip: dict[str, dict[str, float | None]] = {}
        for clip, m, v in c.execute("SELECT clip, metric, value FROM clip_metrics WHERE run_id = ? ORDER BY rowid",
                                    (run_id,)):
            per_clip.setdefault(clip, {})[m] = v
        gt_clip: dict[str, dict[str, float | None]] = {}
        for clip, m, v in c.execute("SELECT clip, metric, value FROM gt_clip_metrics WHERE run_id = ? "
                                    "ORDER BY rowid", (run_id,)):
            gt_clip.setdefault(clip, {})[m] = v
        per_frame: dict[str, dict[str, list[float | None]]] = {}
        if with_frames:
            for clip, m, v in c.execute("SELECT clip, metric, value FROM frame_metrics WHERE run_id = ? "
                                        "ORDER BY rowid", (run_id,)):
                per_frame.setdefault(clip, {}).setdefault(m, []).append(v)
        return RunRecord(**data, per_clip=per_clip, gt_per_clip=gt_clip, per_frame=per_frame, id=run_id)

