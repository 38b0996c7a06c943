"""`--help` text: descriptions are printed as written (argparse %-formats only help= strings)."""

from __future__ import annotations

import pytest

from vcbench.cli import COMMAND_MODULES, main


@pytest.mark.parametrize("command", ["compare", "leaderboard", "plot"])
def test_help_shows_a_single_percent_sign(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "95%" in out and "%%" not in out


def test_no_help_page_shows_doubled_percent(capsys):
    for command in ("score", "evaluate", "plot", "report", "compare", "leaderboard"):
        assert any(command in m for m in COMMAND_MODULES)
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "%%" not in capsys.readouterr().out, command
