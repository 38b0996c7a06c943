"""Lai et al. 2018's test videos ("Learning Blind Video Temporal Consistency"): `davis30` and
`videvo20`, two instances of one set type that differ only in their list and their folder.

The videos are never shipped: the lists are (vcbench/data/), and the user downloads the zip from the
official address (`vcbench datasets download`) or points vcbench at a local copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from vcbench import paths
from vcbench.atomic import atomic_write_text
from vcbench.benchmarks.base import Benchmark, BenchmarkSet, exemplar_origins, find_exemplars, hashed_benchmark, read_list
from vcbench.download import download_with_digest, safe_extract
from vcbench.errors import InputError
from vcbench.frames import Clip

# Lai et al. publish their test videos as one zip (their repo's data/download_data.sh); it unpacks to
# test/input/<DAVIS|videvo>/<video>/%05d.jpg. They publish no checksum for it: vcbench records the
# zip's sha256 beside it and the content checksum of the frames in every run.
LAI_TEST_ZIP_URL = "http://vllab.ucmerced.edu/wlai24/video_consistency/data/test.zip"


@dataclass(frozen=True)
class LaiSet(BenchmarkSet):
    """One of Lai's test sets: the videos of `list_file`, found in `subdir` of the unpacked zip."""

    list_file: str = ""
    subdir: str = ""  # folder name inside Lai's test/input/

    def videos(self) -> list[str]:
        return read_list(self.list_file)

    def _missing(self, root: Path) -> InputError:
        return InputError(
            f"{self.name} ({self.description}) not found under {root}",
            hint=(f"Download {LAI_TEST_ZIP_URL} (16 GB, Lai et al. 2018; holds test/input/{self.subdir}) with "
                  f"`vcbench datasets download {self.name} --data-root DIR` or by hand and unzip it in DIR, then pass "
                  f"--data-root DIR (or set {paths.DATA_ROOT_ENV}=DIR, or --dataset DIR/test/input/{self.subdir})"))

    def locate(self, data_root: str | Path | None = None) -> Path:
        """The folder holding the set's video folders (all of the list's videos), or a clear InputError."""
        root = paths.data_dir(data_root)
        wanted = self.videos()
        best: tuple[int, Path] | None = None
        for cand in (root / "test" / "input" / self.subdir, root / "input" / self.subdir, root / self.subdir, root):
            if not cand.is_dir():
                continue
            have = sum((cand / v).is_dir() for v in wanted)
            if have == len(wanted):
                return cand
            if have and (best is None or have > best[0]):
                best = (have, cand)
        if best is not None:
            missing = [v for v in wanted if not (best[1] / v).is_dir()]
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise InputError(f"{self.name}: {len(missing)} of its {len(wanted)} videos are missing: {shown}",
                             path=best[1],
                             hint=f"re-extract {LAI_TEST_ZIP_URL} there (each video is a folder of %05d.jpg frames)")
        raise self._missing(root)

    def load(self, reference: str, exemplars: str | Path | None, *, data_root: str | Path | None,
             cache_dir: str | Path | None, options: Mapping[str, Any]) -> Benchmark:
        if options:
            raise InputError(f"{self.name} takes no dataset options (got {', '.join(sorted(options))})")
        folder = self.locate(data_root)
        clips = [Clip(v, folder / v, "frames") for v in self.videos()]
        if reference == "exemplar" and exemplars is None:
            raise InputError(f"exemplar mode on {self.name} needs --exemplars DIR (one image per clip)")
        ex = find_exemplars(exemplars, clips) if reference == "exemplar" else {}
        protocol = {"dataset": self.name, "reference_mode": reference, "clips": len(clips), "source": self.source}
        if ex:
            protocol["exemplars"] = exemplar_origins(ex)
        return hashed_benchmark(self.name, clips, reference, protocol, exemplars=ex, root=folder)

    def status(self, data_root: str | Path | None) -> tuple[bool, str]:
        return True, str(self.locate(data_root))

    def download(self, data_root: str | Path | None, *, quiet: bool = False) -> Path:
        """Download Lai et al.'s test zip (davis30 and videvo20 share it) into the data root and extract it.

        The zip's sha256 is written beside it (`test.zip.sha256`): Lai et al. publish none, so later runs
        can tell whether the copy changed. Resumable and atomic through `vcbench.download`.
        """
        root = paths.data_dir(data_root)
        try:
            return self.locate(root)
        except InputError:
            pass
        archive, digest = download_with_digest(LAI_TEST_ZIP_URL, root / "test.zip", quiet=quiet)
        # The digest the download already computed for its check: the 2 GB zip is not read twice.
        atomic_write_text(root / "test.zip.sha256", f"{digest}  test.zip\n")
        safe_extract(archive, root)
        return self.locate(root)


DAVIS30 = LaiSet("davis30", description="DAVIS test videos of Lai et al. 2018 (30 clips)", kind="video",
                 source=f"{LAI_TEST_ZIP_URL} (test/input/DAVIS)", list_file="davis30_test.txt", subdir="DAVIS")
VIDEVO20 = LaiSet("videvo20", description="Videvo test videos of Lai et al. 2018 (20 clips)", kind="video",
                  source=f"{LAI_TEST_ZIP_URL} (test/input/videvo)", list_file="videvo20_test.txt", subdir="videvo")
#: Both sets; a folder holding exactly one's videos ranks under its name.
LAI_SETS: tuple[LaiSet, ...] = (DAVIS30, VIDEVO20)
