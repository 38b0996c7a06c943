"""The build's manifest: one Parquet row per output clip.

Nested values (augmentation parameters, file checksums, references, filter measures) are canonical
JSON strings, so the table stays flat, any Parquet reader opens it, and equal content gives equal
bytes. Paths are relative to the build folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from vcbench.atomic import atomic_path
from vcbench.errors import InputError

MANIFEST_SCHEMA = pa.schema([
    ("clip_id", pa.string()),
    ("shard", pa.int32()),
    ("kind", pa.string()),  # "video" (cut from a source video) or "pseudo" (warped still)
    ("source", pa.string()),
    ("video_id", pa.string()),  # source video id, or still id for pseudo-video
    ("licence", pa.string()),
    ("origin", pa.string()),
    ("shot", pa.int32()),
    ("start_frame", pa.int32()),
    ("end_frame", pa.int32()),
    ("variant", pa.int32()),
    ("augmentation", pa.string()),  # JSON
    ("num_frames", pa.int32()),
    ("height", pa.int32()),
    ("width", pa.int32()),
    ("frame_format", pa.string()),
    ("files", pa.string()),  # JSON {relative path: sha256} for frames
    ("references", pa.string()),  # JSON [{"id", "path", "score"}], best first
    ("flow_estimator", pa.string()),
    ("flow_files", pa.string()),  # JSON {relative path: sha256} for flow and masks
    ("measures", pa.string()),  # JSON filter measures of the base clip
])

JSON_COLUMNS = ("augmentation", "files", "references", "flow_files", "measures")


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def rows_table(rows: Iterable[dict], schema: pa.Schema = MANIFEST_SCHEMA,
               json_columns: tuple[str, ...] = JSON_COLUMNS) -> pa.Table:
    """Rows (dicts with the schema's keys; JSON columns may be Python values) as a table."""
    rows = list(rows)
    cols = {}
    for field in schema:
        vals = [r[field.name] for r in rows]
        if field.name in json_columns:
            vals = [v if isinstance(v, str) else canonical_json(v) for v in vals]
        cols[field.name] = pa.array(vals, type=field.type)
    return pa.table(cols, schema=schema)


def table_bytes(table: pa.Table) -> bytes:
    """The Parquet bytes of a table (zstd, no pandas metadata): equal tables give equal bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def write_manifest(rows: Iterable[dict], path: Path, schema: pa.Schema = MANIFEST_SCHEMA,
                   json_columns: tuple[str, ...] = JSON_COLUMNS) -> None:
    """Write rows (dicts with the schema's keys; JSON columns may be Python values) atomically.

    Written without statistics timestamps or pandas metadata, so the bytes depend on the rows only."""
    table = rows_table(rows, schema, json_columns)
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_manifest(path: Path):
    """The manifest as a pandas DataFrame; `InputError` naming the file when it is unreadable."""
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"unreadable manifest ({exc})".replace("\n", " "), path=path,
                         hint="rerun the same build-dataset command to rewrite it") from exc


BUILD_METADATA_KEY = b"vcbench.build"


def read_build_metadata(path: Path) -> dict | None:
    """The build record stored in a manifest by `concat_manifests` (None when it has none)."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[BUILD_METADATA_KEY]) if BUILD_METADATA_KEY in meta else None


def concat_manifests(paths: list[Path], out: Path, build: dict | None = None,
                     schema: pa.Schema = MANIFEST_SCHEMA) -> int:
    """Concatenate shard manifests (in the given order) into one file; returns the row count.
    `build` (settings, weights {file: sha256}, unverified_weights) goes into the Parquet schema
    metadata, so the manifest says how it was made wherever it is copied."""
    tables = [pq.read_table(p) for p in paths]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    if build is not None:
        table = table.replace_schema_metadata({BUILD_METADATA_KEY: canonical_json(build).encode()})
    with atomic_path(out, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return table.num_rows
