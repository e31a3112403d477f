"""Reading what `arena` printed, whatever the terminal's width."""

from __future__ import annotations


def unboxed(text: str) -> str:
    """Typer's error box without its frame and line breaks, so a message reads the same however wide the terminal."""
    return " ".join(text.translate(str.maketrans("", "", "╭╮╰╯─│")).split())
