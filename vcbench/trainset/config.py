"""A build's settings and identity: `BuildConfig` (what determines the bytes), `RunOptions` (how it
runs), `WeightsRecord` (the weight files it uses), and `build_id`, the short name of that identity
that build.json, plan.json, every shard's stats, the manifest and the DEVC export carry, so a folder
is matched to its settings even without its build.json.

`BuildConfig.as_dict()` and `build_id` are what a rerun compares before resuming a folder: their
bytes must not change (a folder built before would refuse to resume).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vcbench.atomic import atomic_write_text
from vcbench.trainset import shards as shardio
from vcbench.trainset.clips import ClipSpec
from vcbench.trainset.layout import BuildLayout
from vcbench.trainset.manifest import canonical_json


DEFAULT_CLIPS = {"sample": 24}
FULL_DEFAULT_CLIPS = 70_000
#: 2: flow stored as KITTI 16-bit PNGs (was float16 .npy); a folder of another version is not resumed.
PLAN_VERSION = 2
#: The clip count the stats project the build's size to (DEVC's training set).
PROJECT_CLIPS = 70_000


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines the bytes of a build (and nothing that does not)."""

    source: str
    clips: int
    seed: int = 0
    spec: ClipSpec = field(default_factory=ClipSpec)
    flow: str = "dis"  # estimator name for vcbench.flow, or "none"
    features: str = "weightfree"  # descriptor for vcbench.retrieval, or "none" (no references)
    gallery: str | None = None  # folder of gallery images; None = scikit-image stills
    stills: str | None = None  # folder of stills for pseudo-video; None = scikit-image stills
    pseudo_fraction: float = 0.25
    shard_size: int = 8
    frame_format: str = "jpg"
    input: str | None = None
    urls: str | None = None
    index: str = "auto"  # gallery index: "flat" (exact), "ivf", or "auto" (IVF above 200k images)
    nlist: int | None = None  # IVF lists (default ~4 sqrt(N))
    nprobe: int | None = None  # IVF lists probed per query (default nlist // 8)
    gallery_labels: str | None = None  # CSV/TSV gallery image -> class: references kept to the clip's class
    clip_labels: str | None = None  # CSV/TSV clip or video -> class (else the still's label, else voted)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["plan_version"] = PLAN_VERSION
        # Label files change the references: their content, not only their path, is the build's.
        d["label_files_sha256"] = {k: shardio.sha256_bytes(Path(v).read_bytes())
                                   for k, v in (("gallery_labels", self.gallery_labels), ("clip_labels", self.clip_labels))
                                   if v and Path(v).is_file()}
        return d


@dataclass(frozen=True)
class RunOptions:
    """How a build runs (does not change its output)."""

    executor: str = "local"
    address: str | None = None
    workers: int | None = None
    num_gpus_per_task: float = 1.0
    quiet: bool = False
    keep_work: bool = False
    min_interval_s: float = 1.0
    retries: int = 5
    #: Use weight files whose sha256 contradicts the registry (the build is then marked unverified).
    #: Not part of the build's identity: the same files give the same bytes with or without it.
    allow_unverified: bool = False
    #: Where descriptors (and build-pairs' index) run: None = CUDA when there is one. Not part of
    #: the identity; the CPU guarantees byte-identical output, a GPU may differ in the last bits.
    device: str | None = None


@dataclass(frozen=True)
class WeightsRecord:
    """The weight files a build uses, {file name: sha256}, and whether any contradicts the registry."""

    files: tuple[tuple[str, str], ...] = ()
    unverified: bool = False

    def as_dict(self) -> dict:
        return {"weights": dict(self.files), "unverified_weights": self.unverified}


def identity_json(record: dict) -> str:
    """What makes two builds the same dataset: the settings and the weight files' hashes. Whether
    unverified weights were allowed does not change a byte, so it is recorded but not compared."""
    return canonical_json({k: v for k, v in record.items() if k != "unverified_weights"})


def build_id(record: dict) -> str:
    """A short name of a build's identity (`identity_json`), stored in plan.json, shard stats and the
    DEVC export, so a folder can be matched to its settings even without its build.json."""
    return shardio.sha256_bytes(identity_json(record).encode())[:16]


def build_record(cfg: BuildConfig, weights: WeightsRecord) -> dict:
    """build.json: the settings, plus the weights used and whether any was unverified."""
    return {**cfg.as_dict(), **weights.as_dict()}


def write_config(out: Path, cfg: BuildConfig, weights: WeightsRecord) -> None:
    atomic_write_text(BuildLayout(out).build_json, json.dumps(build_record(cfg, weights), indent=1, sort_keys=True) + "\n")


def is_pair_build(root: Path) -> bool:
    """Whether the folder's build.json is a build-pairs record."""
    try:
        return json.loads(BuildLayout(root).build_json.read_text()).get("kind") == "pairs"
    except (OSError, ValueError, AttributeError):
        return False
