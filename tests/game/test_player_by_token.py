"""Signing in by token reads the player and their event in one statement: the request's next read of the event (a
new event round, an answer's event check) finds it in the session instead of asking the database again."""

from __future__ import annotations

import pytest
from sqlalchemy import event as sql_event

from app.db.session import open_database
from app.errors import Unauthorized
from app.game import events, players
from tests.game.events.records import settings

pytestmark = pytest.mark.anyio


async def test_the_token_brings_the_players_event_along(database_url: str) -> None:
    database = open_database(database_url)
    try:
        async with database.sessionmaker() as session:
            created, _host = await events.create_event(session, name="W", pack="fashion", settings=settings())
            _player, token = await events.join(session, event=created, nickname="ana")
            _alone, alone_token = await players.create_player(session, nickname="solo")
            await session.commit()
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        sql_event.listen(database.engine.sync_engine, "before_cursor_execute", count)
        async with database.sessionmaker() as session:
            player = await players.player_by_token(session, token)
            found = await events.event_of_player(session, player)
            assert found is not None and found.code == created.code and player.nickname == "ana"
            assert len(statements) == 1, statements
        async with database.sessionmaker() as session:
            alone = await players.player_by_token(session, alone_token)
            assert alone.nickname == "solo" and await events.event_of_player(session, alone) is None
            with pytest.raises(Unauthorized):
                await players.player_by_token(session, "not-a-token")
    finally:
        await database.dispose()
