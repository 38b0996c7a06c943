"""The results database: every `vcbench evaluate` run, its identity and its per-clip/per-frame values.

SQLite because it is one file a user can copy, query and share, with no server. Several evaluations
may write at once (one per GPU, or a cluster array job writing to a shared disk), so the database
runs in WAL mode with a busy timeout, and every write transaction is retried with backoff when the
file is locked. A run is written in ONE transaction: an interrupted or failed run leaves nothing.

Per-clip and per-frame values live in their own narrow tables (`clip_metrics`, `frame_metrics`) so
that exporting them, or bootstrapping over clips, is a plain query rather than JSON parsing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeVar

from vcbench.errors import VcbenchError
from vcbench.metrics.result import ScoreResult
from vcbench.paths import DB_FILENAME, db_path

SCHEMA_VERSION = 1

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
CREATE TABLE IF NOT EXISTS claims (
    run_key   TEXT PRIMARY KEY,
    token     TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    host      TEXT NOT NULL,
    started   TEXT NOT NULL,
    heartbeat REAL NOT NULL
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

    def set_scores(self, result: ScoreResult, fps: float | None) -> None:
        """Take the scores of the run's `result` (the identity fields are set already) and the model's
        speed: the one place a ScoreResult becomes a record."""
        self.fps = fps
        self.metrics = dict(result.metrics)
        self.per_clip = result.per_clip
        self.per_frame = result.per_frame
        self.gt_metrics = dict(result.gt_metrics)
        self.gt_per_clip = {clip: dict(values) for clip, values in result.gt_per_clip.items()}
        self.unavailable = dict(result.unavailable)
        self.n_clips, self.n_frames = result.n_clips, result.n_frames

    def score_result(self) -> ScoreResult:
        """The recorded scores as a ScoreResult (what `vcbench evaluate` prints and writes for a reused
        run); its protocol holds what the record keeps of it: name, flow, dataset protocol, reference mode."""
        return ScoreResult(metrics=self.metrics, unavailable=self.unavailable, gt_metrics=self.gt_metrics,
                           per_clip=self.per_clip, per_frame=self.per_frame,
                           protocol={"name": self.protocol, "flow": self.flow,
                                     "dataset": self.identity_extra.get("dataset_protocol"),
                                     "reference_mode": self.reference_mode},
                           n_clips=self.n_clips, n_frames=self.n_frames, gt_per_clip=self.gt_per_clip)


def default_db_path() -> Path:
    """`$VCBENCH_DB` if set, else `<platform user data dir>/vcbench/results.sqlite`."""
    return db_path()


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


@functools.lru_cache(maxsize=1)
def expected_columns() -> dict[str, tuple[str, ...]]:
    """{table: columns} this version reads and writes, taken from `_SCHEMA` itself (one source)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMA)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%'")]
        return {t: tuple(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables}
    finally:
        conn.close()


#: A claim whose holder has not refreshed it for this long is stale (its holder is gone or frozen).
CLAIM_STALE_AFTER = 120.0
#: How often a holder refreshes its claim.
CLAIM_HEARTBEAT = 10.0


def pid_alive(pid: int) -> bool:
    """Whether process `pid` on this host still runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class ClaimHolder:
    """Who is running a run identity right now (a row of `claims`)."""

    pid: int
    host: str
    started: str
    heartbeat: float

    def stale_reason(self, now: float | None = None) -> str | None:
        """Why this claim no longer holds (its process is gone, or it stopped refreshing it), or None."""
        if self.host == socket.gethostname() and not pid_alive(self.pid):
            return f"its process (pid {self.pid}) is no longer running"
        age = (time.time() if now is None else now) - self.heartbeat
        if age > CLAIM_STALE_AFTER:
            return f"it was last refreshed {age:.0f} s ago (pid {self.pid} on {self.host})"
        return None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.started[:19]}Z"


@dataclass(frozen=True)
class ClaimResult:
    """`ResultsDB.claim`'s answer: `acquired` (with the `token` to refresh and release it), `recorded`
    (the run is already stored: `run_id`), or `held` by a live `holder`. `took_over` describes a stale
    claim this one replaced."""

    state: str
    token: str | None = None
    run_id: int | None = None
    holder: ClaimHolder | None = None
    took_over: str | None = None


def _sqlite_error(exc: sqlite3.Error, path: Path) -> VcbenchError:
    """One line for an SQLite failure that is the user's environment, not a bug."""
    msg = str(exc)
    low = msg.lower()
    if "readonly" in low or "read-only" in low:
        return VcbenchError("the results database is read-only (the file, or its folder, where SQLite writes its "
                            "-wal and -shm files, is not writable)", path=path,
                            hint="make both writable, or pass --db with a writable file")
    if "unable to open" in low or "disk i/o" in low or "cannot open" in low:
        return VcbenchError(f"cannot open the results database for writing ({msg})", path=path,
                            hint="check the file's and its folder's permissions, or pass --db with another file")
    if "no such column" in low or "has no column" in low or "no such table" in low or "columns" in low:
        return VcbenchError(f"the results database's tables differ from what this vcbench expects ({msg})", path=path,
                            hint="it was made by another vcbench version or program: pass --db with another file "
                                 "or move this one away")
    return VcbenchError(f"the results database failed ({msg})", path=path,
                        hint="check the file, or pass --db with another file")


class ResultsDB:
    """SQLite store of `RunRecord`s; safe for several writer processes at once.

    Each method opens its own short-lived connection, so a `ResultsDB` can be passed to worker
    processes and holds no lock between calls.
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0, retries: int = 8,
                 readonly: bool = False) -> None:
        """`readonly=True` (the report commands) opens an existing file without writing to it, so a
        database in a read-only place can still be read; it is never created."""
        self.path = Path(path) if path is not None else default_db_path()
        self.timeout = timeout
        self.retries = retries
        self.readonly = readonly
        self._immutable = False
        if self.path.exists() and self.path.is_dir():
            raise VcbenchError("is a folder, not a results database", path=self.path,
                               hint="pass a file name to --db, e.g. results.sqlite")
        if readonly:
            if not self.path.is_file():
                raise VcbenchError("no results database here", path=self.path,
                                   hint="run `vcbench evaluate` first, or pass --db")
            self._with_retry(self._check_schema)
            return
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
            if self.readonly:
                # mode=ro never writes; a WAL database in a folder nobody may write to cannot even create
                # its -shm file, so it is then read as immutable (nothing can be writing there either)
                flag = "immutable=1" if self._immutable else "mode=ro"
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?{flag}", uri=True, timeout=self.timeout,
                                       isolation_level=None)
            else:
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
                low = str(exc).lower()
                if self.readonly and not self._immutable and ("readonly" in low or "unable to open" in low):
                    self._immutable = True  # see _connect
                    continue
                if not _is_locked(exc) or attempt == self.retries:
                    if _is_locked(exc):
                        raise VcbenchError("the results database stayed locked by another process", path=self.path,
                                           hint="wait for the other vcbench run to finish, then rerun") from exc
                    raise _sqlite_error(exc, self.path) from exc
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
            else:
                self._check_version(row[0])
            self._check_columns(c)

        self._transaction(conn, body)

    def _check_version(self, value: Any) -> None:
        try:
            version = int(value)
        except (TypeError, ValueError):
            version = None
        if version is None or version < 1:
            raise VcbenchError(f"not a vcbench results database (schema version {value!r})", path=self.path,
                               hint="pass --db with another file or move this one away")
        if version > SCHEMA_VERSION:
            raise VcbenchError(f"results database has schema version {version}, newer than this vcbench "
                               f"understands ({SCHEMA_VERSION})", path=self.path,
                               hint="upgrade vcbench or use another --db")

    def _check_columns(self, c: sqlite3.Connection) -> None:
        """Every table has the columns this version reads and writes; an extra column is tolerated
        (ignored) unless a write would have to fill it (NOT NULL without a default)."""
        problems = []
        for table, want in expected_columns().items():
            info = c.execute(f"PRAGMA table_info({table})").fetchall()
            if not info:
                if not self.readonly or table != "claims":  # a read-only look needs no claims table
                    problems.append(f"table {table} is missing")
                continue
            have = {r[1] for r in info}
            missing = [col for col in want if col not in have]
            blocking = [r[1] for r in info if r[1] not in want and r[3] and r[4] is None and not r[5]]
            if missing:
                problems.append(f"{table} lacks column(s) {', '.join(missing)}")
            if blocking:
                problems.append(f"{table} has unknown required column(s) {', '.join(blocking)}")
        if problems:
            raise VcbenchError(f"the results database's tables differ from what this vcbench expects: "
                               f"{'; '.join(problems)}", path=self.path,
                               hint="it was made by another vcbench version or program: pass --db with another file "
                                    "or move this one away")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Read-only open: the version and the columns, written nowhere."""
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc).lower():
                raise
            row = None
        if row is None:
            raise VcbenchError("not a vcbench results database (no schema version recorded)", path=self.path,
                               hint="pass --db with another file or move this one away")
        self._check_version(row[0])
        self._check_columns(conn)

    def check_writable(self) -> None:
        """Prove that a run can be recorded, before any model runs: a real write, rolled back."""
        if self.readonly:
            raise VcbenchError("the results database was opened read-only", path=self.path)

        def body(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('write_probe', ?)", (utc_now(),))
            finally:
                c.execute("ROLLBACK")

        self._with_retry(body)

    # -- claims: one process runs a given identity at a time ------------------------------------
    def claim(self, key: str, *, reuse_recorded: bool = True) -> ClaimResult:
        """Try to become the one process that runs identity `key` (one transaction).

        `recorded` when the run is stored already (and `reuse_recorded`); `held` when a live process
        holds the claim; else `acquired`, replacing a stale claim (its holder died or stopped
        refreshing it, see `ClaimHolder.stale_reason`)."""
        def body(c: sqlite3.Connection) -> ClaimResult:
            if reuse_recorded:
                row = c.execute("SELECT id FROM runs WHERE run_key = ?", (key,)).fetchone()
                if row is not None:
                    return ClaimResult("recorded", run_id=int(row[0]))
            row = c.execute("SELECT pid, host, started, heartbeat FROM claims WHERE run_key = ?", (key,)).fetchone()
            took_over = None
            if row is not None:
                holder = ClaimHolder(int(row[0]), str(row[1]), str(row[2]), float(row[3]))
                took_over = holder.stale_reason()
                if took_over is None:
                    return ClaimResult("held", holder=holder)
            token = uuid.uuid4().hex
            c.execute("INSERT OR REPLACE INTO claims (run_key, token, pid, host, started, heartbeat) "
                      "VALUES (?, ?, ?, ?, ?, ?)", (key, token, os.getpid(), socket.gethostname(), utc_now(), time.time()))
            return ClaimResult("acquired", token=token,
                               took_over=None if took_over is None else f"{holder.describe()}: {took_over}")

        return self._with_retry(lambda c: self._transaction(c, body))

    def refresh_claim(self, key: str, token: str) -> bool:
        """Renew our claim's heartbeat; False when it is no longer ours (taken over as stale)."""
        def body(c: sqlite3.Connection) -> bool:
            return c.execute("UPDATE claims SET heartbeat = ? WHERE run_key = ? AND token = ?",
                             (time.time(), key, token)).rowcount > 0

        return self._with_retry(lambda c: self._transaction(c, body))

    def release_claim(self, key: str, token: str) -> None:
        """Give up our claim (the run failed or was interrupted): a waiting process may take it."""
        def body(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM claims WHERE run_key = ? AND token = ?", (key, token))

        self._with_retry(lambda c: self._transaction(c, body))

    def holding_claim(self, key: str, token: str, interval: float = CLAIM_HEARTBEAT) -> "_Heartbeat":
        """Context manager: refresh the claim every `interval` seconds in a thread, release it at the end
        (a no-op once `record(..., claim=token)` has consumed it)."""
        return _Heartbeat(self, key, token, interval)

    @property
    def schema_version(self) -> int:
        return self._with_retry(
            lambda c: int(c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]))

    # -- writing ---------------------------------------------------------------------------------
    def record(self, run: RunRecord, *, replace: bool = False, claim: str | None = None) -> int:
        """Store `run` and all its values in one transaction; returns the new run id.

        A run whose `run_key` is already stored is refused unless `replace=True`, which deletes the old
        run inside the same transaction (so `--force` never leaves zero or two copies). `claim` (a token
        from `claim`) is released in the same transaction, so no waiter sees the claim gone and no run.
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
            if claim is not None:
                c.execute("DELETE FROM claims WHERE run_key = ? AND token = ?", (key, claim))
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
        data = {k: v for k, v in dict(row).items() if k == "id" or k in _RUN_COLUMNS}  # tolerated extras ignored
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



class _Heartbeat:
    """Refreshes a claim from a daemon thread while the run is under way (see `ResultsDB.holding_claim`)."""

    def __init__(self, db: ResultsDB, key: str, token: str, interval: float) -> None:
        self.db, self.key, self.token, self.interval = db, key, token, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vcbench-claim", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.db.refresh_claim(self.key, self.token)
            except VcbenchError:  # a briefly locked or unreachable file: the next beat retries
                continue

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.db.release_claim(self.key, self.token)
        except VcbenchError:
            if exc[0] is None:
                raise
