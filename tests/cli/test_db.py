"""`arena db current` says the database's revision and whether it is the head; `arena db downgrade REVISION` asks
before it drops anything (unless --yes). On a SQLite file, through the real migrations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from app.cli import app
from app.config import get_settings
from app.db import migrate

runner = CliRunner()


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    monkeypatch.setenv("ARENA_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def revisions(url: str) -> tuple[str, str]:
    """The head and the revision just before it."""
    script = ScriptDirectory.from_config(migrate.alembic_config(url))
    head = script.get_revision("head")
    assert head is not None and isinstance(head.down_revision, str)
    return head.revision, head.down_revision


def arena_db(*arguments: str, answer: str | None = None) -> str:
    result = runner.invoke(app, ["db", *arguments], input=answer)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_current_on_an_empty_then_an_upgraded_database(database_url: str) -> None:
    head, _ = revisions(database_url)
    assert arena_db("current") == f"database has no revision (empty); the head is {head}: run `arena db upgrade`\n"
    arena_db("upgrade")
    assert arena_db("current") == f"database at revision {head} (the head)\n"


def test_downgrade_one_step_with_yes_then_current_is_behind_the_head(database_url: str) -> None:
    head, previous = revisions(database_url)
    arena_db("upgrade")
    assert arena_db("downgrade", "--yes", "--", "-1") == "database at revision -1\n"
    assert arena_db("current") == f"database at revision {previous}, not the head ({head}): run `arena db upgrade`\n"
    arena_db("upgrade")
    assert arena_db("current") == f"database at revision {head} (the head)\n"


def test_downgrade_asks_first_and_a_no_leaves_the_database_as_it_was(database_url: str) -> None:
    head, _ = revisions(database_url)
    arena_db("upgrade")
    refused = runner.invoke(app, ["db", "downgrade", "base"], input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert f"Downgrade sqlite:///{database_url.removeprefix('sqlite:///')} to base?" in refused.output
    assert arena_db("current") == f"database at revision {head} (the head)\n"
    assert "database at revision base" in arena_db("downgrade", "base", answer="y\n")
    assert arena_db("current").startswith("database has no revision (empty)")


def test_the_confirmation_never_shows_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_DATABASE_URL", "postgresql://arena:s3cret@db.invalid:5432/arena")
    get_settings.cache_clear()
    try:
        refused = runner.invoke(app, ["db", "downgrade", "base"], input="n\n")
    finally:
        get_settings.cache_clear()
    assert refused.exit_code == 1
    assert "arena:***@db.invalid" in refused.output and "s3cret" not in refused.output


def test_current_on_an_unreachable_database_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_DATABASE_URL", f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'a.db'}")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["db", "current"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "error: database not reachable" in result.stderr and "Traceback" not in result.output
