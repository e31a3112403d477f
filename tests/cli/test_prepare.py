"""`arena prepare CODE` makes an event's stock on the configured model service, reports it, and is a no-op once
done; an unknown code is one red line."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.config import get_settings
from app.db import migrate
from app.db.session import open_database
from app.game import events
from tests.game.events.records import settings

runner = CliRunner()


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    for name, value in {"ARENA_DATABASE_URL": url, "ARENA_DEVICE": "cpu", "ARENA_TORCH_THREADS": "1"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    migrate.upgrade(url)
    yield url
    get_settings.cache_clear()


def an_event(url: str, **raw: object) -> str:
    async def run() -> str:
        database = open_database(url)
        try:
            async with database.sessionmaker() as session:
                event, _token = await events.create_event(session, name="W", pack="fashion", settings=settings(**raw))
            return event.code
        finally:
            await database.dispose()

    return asyncio.run(run())


def test_prepare_makes_the_events_stock_once(database_url: str) -> None:
    code = an_event(database_url, rounds=2, expected_players=2, eps=8 / 255)
    made = runner.invoke(app, ["prepare", code.lower()])
    assert made.exit_code == 0, made.output
    assert made.stdout.endswith(f"event {code}: 4 of 4 images prepared\n")
    again = runner.invoke(app, ["prepare", code])
    assert again.exit_code == 0 and again.stdout.endswith(f"event {code}: 4 of 4 images prepared\n")


def test_prepare_explains_an_event_without_stock_and_an_unknown_code(database_url: str) -> None:
    code = an_event(database_url, rounds=2)
    plain = runner.invoke(app, ["prepare", code])
    assert plain.exit_code == 0 and "prepares no images" in plain.stdout
    unknown = runner.invoke(app, ["prepare", "ZZZZZZ"])
    assert unknown.exit_code == 1 and "error:" in unknown.output
