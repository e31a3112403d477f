"""The `arena` command: help, migrations, export, and clear errors instead of tracebacks."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from app.cli import app
from tests.cli.output import unboxed

runner = CliRunner()


def arena(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_every_command_has_help() -> None:
    for command in (
        ["--help"],
        ["serve", "--help"],
        ["train", "--help"],
        ["db", "upgrade", "--help"],
        ["export", "--help"],
        ["prepare", "--help"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output


def test_db_upgrade_then_export_an_empty_database(tmp_path: Path) -> None:
    env = {"ARENA_DATABASE_URL": f"sqlite:///{tmp_path / 'sub' / 'arena.db'}"}
    upgraded = arena("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "sub" / "arena.db").is_file()
    exported = arena("export", "--format", "csv", env=env)
    assert exported.returncode == 0, exported.stderr
    assert list(csv.reader(io.StringIO(exported.stdout)))[0][:3] == ["answer_id", "answered_at", "player_id"]
    bad = arena("export", "--format", "xml", env=env)
    assert bad.returncode == 2 and "'xml' is not one of 'csv', 'json', 'jsonl', 'zip'" in unboxed(bad.stderr)


def test_serve_without_the_data_pack_says_what_to_install(tmp_path: Path) -> None:
    env = {"ARENA_DATA_DIR": str(tmp_path / "nowhere"), "ARENA_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    result = arena("serve", "--port", "1", env=env)
    assert result.returncode == 1
    assert "dataset-fashion-mnist" in result.stderr and "ARENA_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_without_a_checkpoint_says_how_to_train(tmp_path: Path) -> None:
    env = {"ARENA_MODELS_DIR": str(tmp_path), "ARENA_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    result = arena("serve", "--port", "1", env=env)
    assert result.returncode == 1
    assert "arena train --pack fashion" in result.stderr and "Traceback" not in result.stderr


def test_production_refuses_the_default_secret(tmp_path: Path) -> None:
    env = {"ARENA_ENVIRONMENT": "production", "ARENA_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    result = arena("db", "upgrade", env=env)
    assert result.returncode != 0 and "ARENA_SECRET_KEY" in result.stderr
