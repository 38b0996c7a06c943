"""The one plain-text table printer of the command line (every aligned listing goes through it)."""

from __future__ import annotations

from typing import Any, Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, rule: bool = True) -> str:
    """Left-aligned columns two spaces apart, a dashed rule under the header (unless `rule=False`), no
    trailing spaces. Cells are turned into text with `str`; the last column is never padded, so one long
    free-text column (descriptions, notes) does not widen the others' rule."""
    table = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    n = len(headers)
    if any(len(r) != n for r in table):
        raise ValueError(f"every row needs {n} cells")
    widths = [max(len(r[i]) for r in table) for i in range(n)]
    # The last column's rule spans its header only: its cells are free text of any length.
    rule_widths = widths[:-1] + [len(table[0][-1])] if n else []
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in rule_widths))
    return "\n".join(lines)
