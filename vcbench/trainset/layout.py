"""Every path of a build folder (OUT of build-dataset and build-pairs) and of a DEVC export, in one place.

The pipeline, the stages, the shard writer, verify and the exports name files only through these
classes, so the on-disk layout (a contract: users' folders are resumed and read by DEVC's loaders)
is written once. `BuildLayout(out)` is OUT:

  build.json              the settings and weight files (`build_json`)
  plan.json               the output clips or classes (`plan_json`)
  failures.jsonl          what failed, with reasons (`failures`)
  candidates.parquet      every cut clip and its verdict (`candidates`)
  manifest.parquet        all shards' rows (`manifest`); pairs.parquet: build-pairs' pairs (`pairs`)
  stats.json              totals (`stats_json`)
  downloads/              the remote sources' files (`downloads`)
  gallery/                the reference index; labels.json with --gallery-labels (`gallery`, `gallery_labels`)
  shards/shard-NNNNN/     one shard (`shard_dir`): its manifest.parquet (`shard_manifest`) and per clip
                          frames/%05d.<fmt>, flow_fw/%05d.png, flow_bw/%05d.png, mask/%05d.png (`ClipFiles`)
  shards/shard-NNNNN.stats.json   written after the shard's rename: it marks the shard done (`shard_stats`)
  work/extract/<video>/   the extraction cache: candidates.json and <clip>.npy (`extract_dir`, ...)

`DevcLayout(dest)` is a DEVC export: one folder per clip (`DevcClip`) or per class (`DEVC_PAIR_TIERS`),
and the export's record `vcbench-export.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: File names inside a shard's folder (a build-pairs shard adds its pairs and generated images), and
#: its clips' sub-folders.
SHARD_MANIFEST = "manifest.parquet"
SHARD_PAIRS = "pairs.parquet"
FRAMES_DIR, FLOW_FW_DIR, FLOW_BW_DIR, MASK_DIR = "frames", "flow_fw", "flow_bw", "mask"
#: The extraction record of one video (present = the video's extraction is complete).
CANDIDATES_JSON = "candidates.json"
#: The gallery's classes aligned with the index ids (with --gallery-labels).
LABELS_FILE = "labels.json"


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


class BuildLayout:
    """The paths of one build folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # top-level records
    @property
    def build_json(self) -> Path:
        return self.root / "build.json"

    @property
    def plan_json(self) -> Path:
        return self.root / "plan.json"

    @property
    def failures(self) -> Path:
        return self.root / "failures.jsonl"

    @property
    def candidates(self) -> Path:
        return self.root / "candidates.parquet"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.parquet"

    @property
    def pairs(self) -> Path:
        return self.root / "pairs.parquet"

    @property
    def stats_json(self) -> Path:
        return self.root / "stats.json"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    # the gallery index
    @property
    def gallery(self) -> Path:
        return self.root / "gallery"

    @property
    def gallery_labels(self) -> Path:
        return self.gallery / LABELS_FILE

    # the extraction cache
    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def extract(self) -> Path:
        return self.work / "extract"

    def extract_dir(self, video_id: str) -> Path:
        return self.extract / video_id

    def candidates_json(self, video_id: str) -> Path:
        return self.extract_dir(video_id) / CANDIDATES_JSON

    def extracted_clip(self, video_id: str, clip_id: str) -> Path:
        return self.extract_dir(video_id) / clip_file(clip_id)

    # shards
    @property
    def shards(self) -> Path:
        return self.root / "shards"

    def shard_dir(self, index: int) -> Path:
        return self.shards / shard_name(index)

    def shard_manifest(self, index: int) -> Path:
        return self.shard_dir(index) / SHARD_MANIFEST

    def shard_pairs(self, index: int) -> Path:
        return self.shard_dir(index) / SHARD_PAIRS

    def shard_stats(self, index: int) -> Path:
        return self.shards / f"{shard_name(index)}.stats.json"

    def shard_stats_files(self) -> list[Path]:
        """Every shard stats file there is, by name."""
        return sorted(self.shards.glob("shard-*.stats.json")) if self.shards.is_dir() else []

    @staticmethod
    def shard_index(name: str) -> int | None:
        """The index of a `shard-NNNNN` folder name (None for any other name)."""
        head, _, num = name.partition("-")
        return int(num) if head == "shard" and num.isdigit() else None

    def rel(self, path: Path) -> str:
        """`path` relative to the build, as manifests and verify reports name files."""
        return Path(path).relative_to(self.root).as_posix()


def shard_image(image_id: str) -> str:
    """A build-pairs shard's stored copy of a generated image, relative to the shard."""
    return f"images/{devc_image_name(image_id)}"


def clip_file(clip_id: str) -> str:
    """An extracted clip's raw frames in the extraction cache (a .npy array)."""
    return f"{clip_id}.npy"


@dataclass(frozen=True)
class ClipFiles:
    """A clip's files inside its shard folder, as paths relative to the shard."""

    clip_id: str

    def frame(self, t: int, fmt: str) -> str:
        return f"{self.clip_id}/{FRAMES_DIR}/{t:05d}.{fmt}"

    def flow(self, t: int, direction: str) -> str:
        """`direction` "fw" (t -> t+1) or "bw" (t+1 -> t)."""
        return f"{self.clip_id}/{FLOW_FW_DIR if direction == 'fw' else FLOW_BW_DIR}/{t:05d}.png"

    def mask(self, t: int) -> str:
        return f"{self.clip_id}/{MASK_DIR}/{t:05d}.png"


def stored_files_in(files, folder: str) -> list[str]:
    """The recorded files (relative paths) under a clip's `folder` (FLOW_FW_DIR, MASK_DIR, ...), in order."""
    return sorted(f for f in files if f"/{folder}/" in f)


# ------------------------------------------------------------------------------------ DEVC's layouts
#: The export's record: which build, manifest and options the folder holds (loaders skip files).
MARKER = "vcbench-export.json"
#: build-pairs export: tier -> (image folder, pair list) in each class folder (DEVC's ImageNet loader).
DEVC_PAIR_TIERS = {"good": ("input", "pairs.txt"), "mid": ("input_mid", "pairs_mid.txt"),
                   "bad": ("input_bad", "pairs_bad.txt")}


class DevcLayout:
    """A DEVC export folder: its record, the shared all-zero backward flow, one folder per unit."""

    def __init__(self, dest: str | Path):
        self.dest = Path(dest)

    @property
    def marker(self) -> Path:
        return self.dest / MARKER

    def zero_flow(self, height: int, width: int) -> Path:
        return self.dest / f"vcbench-zero-backward-flow-{height}x{width}.flo"

    def unit(self, name: str) -> Path:
        return self.dest / name


def devc_frame_name(t: int) -> str:
    """A frame's file name in `input_pad/` and `reference_gt/`, and in the pairs file."""
    return f"{t:05d}.jpg"


def devc_image_name(image_id: str) -> str:
    """A reference (or ImageNet pair image) file name; DEVC's loaders append `.JPEG` to ids."""
    return f"{image_id}.JPEG"


@dataclass(frozen=True)
class DevcClip:
    """The files of one clip folder of DEVC's `--data_root` (`lib/videoloader.py`)."""

    folder: Path

    DIRS = ("input_pad", "reference", "reference_gt", "flow", "mask")
    PAIRS_FILE = "pairs_output_new.txt"

    def frame(self, t: int) -> Path:
        return self.folder / "input_pad" / devc_frame_name(t)

    def reference(self, ref_id: str) -> Path:
        return self.folder / "reference" / devc_image_name(ref_id)

    def reference_gt(self, t: int) -> Path:
        return self.folder / "reference_gt" / devc_frame_name(t)

    def flow(self, t: int, direction: str) -> Path:
        """`direction` "forward" (t -> t+1) or "backward" (t+1 -> t)."""
        return self.folder / "flow" / f"{t:05d}_{direction}.flo"

    def mask(self, t: int) -> Path:
        return self.folder / "mask" / f"{t:05d}_mask.pgm"

    @property
    def pairs(self) -> Path:
        return self.folder / self.PAIRS_FILE
