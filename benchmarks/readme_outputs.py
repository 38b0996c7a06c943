"""Re-run the README's sample commands offline and diff their output against the README's blocks.

    python3 benchmarks/readme_outputs.py [--keep DIR]

The "Evaluate a model on the bundled sample" section: `evaluate --model reinhard`, then gray, welsh and
propagate with `--save-frames frames/` (the README's order, so the run numbers match), `leaderboard`
and `plot --out plots/ --frames frames/`, each in a fresh folder with its own VCBENCH_DB,
VCBENCH_CACHE_DIR, VCBENCH_DATA_ROOT and empty TORCH_HOME (VCBENCH_OFFLINE=1), as the README's run
had. A README block that is followed by its command's output is compared line by line; frames/s
figures, the leaderboard's fps column and absolute paths are masked, everything else (every number,
the data checksum, the flow label) must match. A README line cut with "..." matches any line that
starts with its text; a block holding a bare "..." line lists only some of the output, in order.
Prints each difference and exits 1 if there is any. Takes a few minutes on 2 cores; not part of the
test suite.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTION = "## Evaluate a model on the bundled sample"

#: The runs the README's leaderboard was made from, in its order (run 1 is reinhard).
RUNS = (["evaluate", "--model", "reinhard", "--dataset", "sample"],
        ["evaluate", "--model", "gray", "--dataset", "sample", "--save-frames", "frames/"],
        ["evaluate", "--model", "welsh", "--dataset", "sample", "--save-frames", "frames/"],
        ["evaluate", "--model", "propagate", "--dataset", "sample", "--save-frames", "frames/"])

FPS = re.compile(r"\d+(?:\.\d+)? frames/s")
PATH = re.compile(r"(?<![\w/:.])(?:~|/)[^\s)`]*")


def readme_pairs(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for each ```bash block directly followed by a plain block."""
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S)
    spans = [m.span() for m in re.finditer(r"```(\w*)\n(.*?)```", section, flags=re.S)]
    pairs = []
    for i in range(len(blocks) - 1):
        (lang, body), (next_lang, next_body) = blocks[i], blocks[i + 1]
        between = section[spans[i][1]:spans[i + 1][0]]
        if lang == "bash" and next_lang == "" and not between.strip():
            command = body.split("#", 1)[0].strip()
            pairs.append((command, next_body.rstrip("\n").splitlines()))
    return pairs


def mask(lines: list[str]) -> list[str]:
    """Frames/s figures, the fps column of Markdown tables and absolute paths replaced by placeholders."""
    out, fps_col = [], None
    for line in lines:
        line = PATH.sub("<path>", FPS.sub("<fps> frames/s", line.rstrip()))
        if line.startswith("|"):
            cells = line.split(" | ")
            if fps_col is None and "fps" in cells:
                fps_col = cells.index("fps")
            elif fps_col is not None and len(cells) > fps_col and not set(cells[fps_col]) <= set("-:|"):
                cells[fps_col] = "<fps>" if cells[fps_col].strip() else cells[fps_col]
                line = " | ".join(cells)
        else:
            fps_col = None
        out.append(line)
    return out


NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def numbers_agree(want: str, got: str) -> bool:
    """Whether the two lines hold the same numbers, each of `got` rounded to the README's decimals."""
    a, b = NUMBER.findall(want), NUMBER.findall(got)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        places = len(x.split(".")[1]) if "." in x else 0
        if f"{float(y):.{places}f}" != x:
            return False
    return True


def label(diff: list[str]) -> list[str]:
    """Mark each removed/added line pair of a hunk whose numbers agree at the README's precision."""
    out, removed = diff[:2], []  # the two file header lines
    for d in diff[2:]:
        if d.startswith("@@"):
            removed = []
        elif d.startswith("-"):
            removed.append(d[1:])
        elif d.startswith("+") and removed:
            tag = "format only" if numbers_agree(removed.pop(0), d[1:]) else "NUMBERS DIFFER"
            out.append(f"{d}    [{tag}]")
            continue
        out.append(d)
    return out


def compare(command: str, expected: list[str], actual: list[str], stderr: list[str] = ()) -> list[str]:
    """The differences between a README block and the command's output (empty: they agree)."""
    want, got = mask(expected), mask(actual)
    if "..." in (w.strip() for w in want):  # a partial listing: its lines in order (stderr included)
        got = got + mask(list(stderr))
        missing, pos = [], 0
        for w in (w for w in want if w.strip() != "..."):
            hits = [i for i in range(pos, len(got)) if got[i] == w]
            if hits:
                pos = hits[0] + 1
            else:
                missing.append(f"  README line not in the output (in order): {w}")
        return missing
    for i, w in enumerate(want):  # a line the README cut with "..." matches any line starting so
        if "..." in w:
            prefix = w.split("...", 1)[0].rstrip()
            for j, g in enumerate(got):
                if g.startswith(prefix):
                    got[j] = w
                    break
    diff = list(difflib.unified_diff(want, got, "README", f"$ vcbench {command}", lineterm="", n=0))
    return [f"  {d}" for d in label(diff)]


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[list[str], list[str]]:
    proc = subprocess.run([sys.executable, "-m", "vcbench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"vcbench {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout.rstrip("\n").splitlines(), proc.stderr.rstrip("\n").splitlines()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    pairs = dict(readme_pairs(README.read_text(encoding="utf-8")))
    with tempfile.TemporaryDirectory(prefix="readme-outputs-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / "torch" / "hub" / "checkpoints").mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, VCBENCH_DB=str(work / "results.sqlite"), VCBENCH_CACHE_DIR=str(work / "cache"),
                   VCBENCH_DATA_ROOT=str(work / "data"), TORCH_HOME=str(work / "torch"), VCBENCH_OFFLINE="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.pop("VCBENCH_IMAGENET_VAL", None)
        outputs: dict[str, tuple[list[str], list[str]]] = {}
        for argv in RUNS:
            print("$ vcbench " + " ".join(argv), flush=True)
            outputs[" ".join(argv)] = run(argv, work, env)
        for command in pairs:
            if command.startswith("vcbench ") and command[len("vcbench "):] not in outputs:
                argv = command.split()[1:]
                print("$ " + command, flush=True)
                outputs[" ".join(argv)] = run(argv, work, env)
        problems = 0
        for command, expected in pairs.items():
            key = command[len("vcbench "):]
            diffs = compare(key, expected, *outputs[key])
            print(f"{'OK  ' if not diffs else 'DIFF'} vcbench {key}")
            for d in diffs:
                print(d)
            problems += bool(diffs)
    print(f"{len(pairs)} README block(s) compared, {problems} with differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
