"""README's command list names every `arena` command and sub-command."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from app.cli import app
from app.config import PROJECT_ROOT


def command_lines(group: TyperGroup, prefix: str) -> list[str]:
    lines = []
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            lines += command_lines(command, f"{prefix} {name}")
        else:
            lines.append(f"{prefix} {name}")
    return lines


def test_readme_names_every_command() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    commands = command_lines(root, "arena")
    assert {"arena serve", "arena modelsvc", "arena train-advgan", "arena db current", "arena db downgrade"} <= set(
        commands
    )
    assert [c for c in commands if f"`{c}" not in section] == []
    assert "`arena --version`" in section
