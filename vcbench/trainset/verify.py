"""`vcbench datasets verify DIR`: check every checksum a build recorded and report what is wrong.

Checks, for a build folder: every shard the plan calls for is complete (folder + stats file); each
shard manifest matches the sha256 in its stats; every frame, flow and mask file listed in the
manifests exists with its recorded sha256; the top-level manifest holds exactly the shards' clips.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vcbench.trainset.config import is_pair_build
from vcbench.trainset.layout import BuildLayout
from vcbench.trainset.manifest import read_manifest
from vcbench.errors import InputError
from vcbench.hashing import sha256_file


@dataclass
class VerifyReport:
    root: Path
    files_checked: int = 0
    clips: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unit: str = "clips"  # what `clips` counts: "images" for a pair build

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.problems)

    def as_dict(self) -> dict:
        return {"root": str(self.root), "ok": self.ok, "clips": self.clips, "files_checked": self.files_checked,
                "missing": self.missing, "corrupt": self.corrupt, "problems": self.problems}


def _check_files(root: Path, files: dict[str, str], report: VerifyReport) -> None:
    for rel, want in files.items():
        path = root / rel
        report.files_checked += 1
        if not path.is_file():
            report.missing.append(rel)
        elif sha256_file(path) != want:
            report.corrupt.append(rel)


def _checked_shard(root: Path, index: int, report: VerifyReport) -> tuple[dict, Path] | None:
    """(stats, manifest path) of a shard whose folder, stats and manifest (with its recorded sha256)
    are there; None, with what is wrong in `report`, otherwise."""
    layout = BuildLayout(root)
    sdir, spath, mpath = layout.shard_dir(index), layout.shard_stats(index), layout.shard_manifest(index)
    if not sdir.is_dir():
        report.missing.append(f"{layout.rel(sdir)}/")
        return None
    if not spath.is_file():
        report.missing.append(layout.rel(spath))
        return None
    stats = json.loads(spath.read_text())
    report.files_checked += 1
    if not mpath.is_file():
        report.missing.append(layout.rel(mpath))
        return None
    if sha256_file(mpath) != stats.get("manifest_sha256"):
        report.corrupt.append(layout.rel(mpath))
        return None
    return stats, mpath


def verify_build(root: str | Path) -> VerifyReport:
    """A build-dataset or build-pairs folder, by its build.json."""
    root = Path(root)
    layout = BuildLayout(root)
    if not layout.build_json.is_file() or not layout.plan_json.is_file():
        raise InputError("not a build-dataset or build-pairs folder (no build.json/plan.json)", path=root,
                         hint="point at the --out folder of vcbench build-dataset or build-pairs")
    if is_pair_build(root):
        return verify_pairs(root)
    report = VerifyReport(root)
    cfg = json.loads(layout.build_json.read_text())
    plan = json.loads(layout.plan_json.read_text())["clips"]
    n_shards = (len(plan) + cfg["shard_size"] - 1) // cfg["shard_size"]
    shard_ids: list[str] = []
    for i in range(n_shards):
        checked = _checked_shard(root, i, report)
        if checked is None:
            continue
        df = read_manifest(checked[1])
        for row in df.itertuples(index=False):
            report.clips += 1
            shard_ids.append(row.clip_id)
            _check_files(root, json.loads(row.files), report)
            _check_files(root, json.loads(row.flow_files), report)
    _check_top_manifest(root, shard_ids, report)
    return report


def verify_pairs(root: Path) -> VerifyReport:
    """A build-pairs folder: every class shard complete, its files and every source image with their
    recorded sha256 (a changed ImageNet file is reported), the top-level tables matching the shards."""
    import pyarrow.parquet as pq

    report = VerifyReport(root, unit="images")
    layout = BuildLayout(root)
    plan = json.loads(layout.plan_json.read_text())["classes"]
    shard_ids: list[str] = []
    n_pairs = 0
    for c in plan:
        checked = _checked_shard(root, c["shard"], report)
        if checked is None:
            continue
        stats, mpath = checked
        sdir = layout.shard_dir(c["shard"])
        _check_files(root, {layout.rel(sdir / rel): sha for rel, sha in stats.get("files", {}).items()}, report)
        n_pairs += sum(stats.get("pairs", {}).values())
        for row in read_manifest(mpath).itertuples(index=False):
            report.clips += 1
            shard_ids.append(row.image_id)
            if not row.file:  # a source image: the build links it, so it must still be the file that was paired
                _check_files(root, {row.origin: row.sha256}, report)
    _check_top_manifest(root, shard_ids, report, id_column="image_id")
    top_pairs = layout.pairs
    if not top_pairs.is_file():
        report.missing.append(layout.rel(top_pairs))
    elif not report.missing and pq.read_metadata(top_pairs).num_rows != n_pairs:
        report.problems.append(f"pairs.parquet does not hold the shards' {n_pairs} pairs; rerun the build command")
    return report


def _check_top_manifest(root: Path, shard_ids: list[str], report: VerifyReport, id_column: str = "clip_id") -> None:
    """The top-level manifest lists exactly the shards' rows, in order, without duplicates."""
    layout = BuildLayout(root)
    top = layout.manifest
    if not top.is_file():
        report.missing.append(layout.rel(top))
    else:
        try:
            top_ids = list(read_manifest(top)[id_column])
        except InputError:
            report.corrupt.append(layout.rel(top))
        else:
            if top_ids != shard_ids and not report.missing:
                report.problems.append(f"manifest.parquet lists {len(top_ids)} rows, the shards {len(shard_ids)}; "
                                       "rerun the build command to rewrite it")
            dupes = len(top_ids) - len(set(top_ids))
            if dupes:
                report.problems.append(f"manifest.parquet holds {dupes} duplicate ids")
