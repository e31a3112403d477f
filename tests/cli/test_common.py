"""failing_cleanly: the errors a user can fix end a command with one line and exit code 1, never a traceback."""

from __future__ import annotations

import pytest
import typer

from app.cli.common import failing_cleanly


def test_a_listed_error_exits_with_its_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exited, failing_cleanly(ValueError):
        raise ValueError("eps must be positive")
    assert exited.value.exit_code == 1
    assert capsys.readouterr().err == "error: eps must be positive\n"


def test_key_errors_keep_their_quotes_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit), failing_cleanly(KeyError):
        raise KeyError("unknown attack 'x'")
    assert capsys.readouterr().err == "error: \"unknown attack 'x'\"\n"
    with pytest.raises(typer.Exit), failing_cleanly(KeyError, unquoted_key_errors=True):
        raise KeyError("unknown attack 'x'")
    assert capsys.readouterr().err == "error: unknown attack 'x'\n"


def test_ctrl_c_says_what_was_left(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit), failing_cleanly(interrupted="nothing was written"):
        raise KeyboardInterrupt
    assert capsys.readouterr().err == "error: interrupted: nothing was written\n"
    with pytest.raises(KeyboardInterrupt), failing_cleanly(ValueError):
        raise KeyboardInterrupt


def test_other_errors_pass_through() -> None:
    with pytest.raises(RuntimeError), failing_cleanly(ValueError):
        raise RuntimeError("a bug, with its traceback")
