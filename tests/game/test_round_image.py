"""A round's image: the shown PNG is read alone, not the row with the original's PNG too (every round page asks for
it, so the whole row doubled what the database sent per page); the original still only after the reveal rule."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import open_database
from app.errors import NotFound
from app.game import play, players, rounds
from tests.game.test_rounds import PLAN, KnownImages

pytestmark = pytest.mark.anyio


@contextmanager
def statements_run(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_the_shown_image_is_read_without_the_original(database_url: str) -> None:
    database = open_database(database_url)
    source = KnownImages()
    try:
        async with database.sessionmaker() as session:
            player, _ = await players.create_player(session, nickname="looker")
            record = await rounds.start_round(session, player=player, source=source, plan=PLAN)
            await session.commit()
            round_id, shown = record.id, record.adversarial_png
        async with database.sessionmaker() as session:
            with statements_run(database.engine) as seen:
                assert await play.round_image(session, round_id=round_id, kind="adversarial") == shown
            assert seen and not any("clean_png" in statement for statement in seen)
            with pytest.raises(NotFound):
                await play.round_image(session, round_id=round_id, kind="original")  # not answered yet
            with pytest.raises(NotFound):
                await play.round_image(session, round_id="missing", kind="adversarial")
    finally:
        await database.dispose()
