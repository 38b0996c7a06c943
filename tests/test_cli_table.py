"""The one table printer (`vcbench.cli.table.format_table`) and the listings that use it."""

from __future__ import annotations

import pytest

from vcbench.cli import main
from vcbench.cli.table import format_table


def test_columns_aligned_rule_and_no_trailing_spaces():
    text = format_table(("name", "n", "note"), [("psnr", 12, "x"), ("warp_error", 3, "a longer note")])
    assert text.splitlines() == [
        "name        n   note",
        "----------  --  ----",
        "psnr        12  x",
        "warp_error  3   a longer note",
    ]
    assert format_table(("a", "b"), [("1", "2")], rule=False).splitlines() == ["a  b", "1  2"]
    with pytest.raises(ValueError):
        format_table(("a", "b"), [("1",)])


@pytest.mark.parametrize("argv,header", [(["models", "list"], ("model", "origin", "weights", "description")),
                                         (["weights", "list"], ("name", "file", "status", "path")),
                                         (["datasets", "list"], ("dataset", "kind", "status", "description"))])
def test_listings_are_aligned(argv, header, capsys, tmp_path):
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == list(header)
    starts = [lines[0].index(h) for h in header]
    assert lines[1].startswith("-" * len(header[0]))
    body = [l for l in lines[2:] if l.strip() and ":" not in l[: starts[1]]]
    assert body
    for line in body:  # every column starts where its header starts
        for s in starts[1:]:
            assert line[s - 2:s] == "  " and line[s] != " ", line
