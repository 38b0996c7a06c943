"""The argument parser class of every `vcbench` command: a usage mistake is one line on stderr.

argparse prints its whole usage block before the error; for a typed flag (`--batch-size abc`) the one
line that matters is which flag and what type it expects, and where the full usage is.
"""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

#: argparse's own words for a value its `type=` refused, and what to expect instead.
_EXPECTED = {"int": "an integer", "float": "a number"}


class OneLineParser(argparse.ArgumentParser):
    """`ArgumentParser` whose errors are one line naming the flag, the expected type and `--help`."""

    def error(self, message: str) -> NoReturn:
        m = re.search(r"invalid (\w+) value", message)
        if m and m.group(1) in _EXPECTED:
            message += f" (expects {_EXPECTED[m.group(1)]})"
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}; see `{self.prog} --help`\n")
