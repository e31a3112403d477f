"""Preparing an event: its stock is rounds × expected players, made before it starts with its progress reported,
and its players' rounds are then claimed from the stock, exactly as stored, without asking the model."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import open_database
from app.db.tables import EventRecord, PlayerRecord, RoundRecord, StockImageRecord, attacked_image_columns
from app.errors import Invalid
from app.game import events
from app.game.events import prepare
from tests.game.events.records import settings
from tests.game.test_rounds import KnownImages

pytestmark = pytest.mark.anyio


def test_the_stock_target_is_rounds_times_expected_players_in_own_pace_events_with_a_round_limit() -> None:
    assert settings(rounds=3, expected_players=2).stock_target == 6
    assert settings(rounds=3).stock_target == 0, "nothing prepared unless the host says how many will play"
    assert settings(time_limit_s=600, expected_players=2).stock_target == 0
    assert settings(style="together", rounds=3, expected_players=2).stock_target == 0


async def reloaded(session: AsyncSession, event: EventRecord, player: PlayerRecord) -> tuple[EventRecord, PlayerRecord]:
    found_event, found_player = await session.get(EventRecord, event.id), await session.get(PlayerRecord, player.id)
    assert found_event is not None and found_player is not None
    return found_event, found_player


def test_expected_players_is_checked() -> None:
    for wrong in (-1, 1001, 2.5, "many"):
        with pytest.raises(Invalid, match="Expected players"):
            settings(rounds=3, expected_players=wrong)


async def test_a_prepared_event_serves_its_rounds_from_the_stock(database_url: str) -> None:
    database = open_database(database_url)
    maker = KnownImages()
    try:
        async with database.sessionmaker() as session:
            event, _token = await events.create_event(
                session, name="W", pack="fashion", settings=settings(rounds=3, expected_players=2, eps=8 / 255)
            )
        seen: list[prepare.Progress] = []
        assert await prepare.progress(database, event) == prepare.Progress(made=0, target=6)
        done = await prepare.prepare_event(database, maker, event.code, on_progress=seen.append)
        assert done == prepare.Progress(made=6, target=6) and done.done
        assert seen[0].made == 0 and seen[-1].made == 6 and [p.made for p in seen] == sorted(p.made for p in seen)
        assert len(maker.jobs) == 6 and not any(job.any_image for job in maker.jobs)
        assert await prepare.event_needing_stock(database) is None

        async with database.sessionmaker() as session:
            stocked = {row.seed: attacked_image_columns(row) for row in await session.scalars(select(StockImageRecord))}
            event = await events.event_by_code(session, event.code)
            player, _ = await events.join(session, event=event, nickname="ana")
            events.start(event)
            await session.commit()
        player_source = KnownImages()
        async with database.sessionmaker() as session:
            event, player = await reloaded(session, event, player)
            for _ in range(3):
                record = await events.ask_for_round(session, player=player, event=event, source=player_source)
                await events.submit_answer(
                    session, player=player, event=event, round_id=record.id, choice="Bag", source=player_source
                )
        assert player_source.jobs == [], "no round waited for the model"
        async with database.sessionmaker() as session:
            served = list(await session.scalars(select(RoundRecord)))
        assert len(served) == 3
        for record in served:
            assert attacked_image_columns(record) == stocked[record.seed], "the round is the stored image"
    finally:
        await database.dispose()


async def test_an_event_needing_stock_is_found_and_an_unprepared_round_is_made_on_demand(database_url: str) -> None:
    database = open_database(database_url)
    try:
        async with database.sessionmaker() as session:
            event, _token = await events.create_event(
                session, name="W", pack="fashion", settings=settings(rounds=2, expected_players=1)
            )
            events.start(event)
            await session.commit()
        found = await prepare.event_needing_stock(database)
        assert found is not None and found.id == event.id
        async with database.sessionmaker() as session:
            event = await events.event_by_code(session, event.code)
            player, _ = await events.join(session, event=event, nickname="bo")
        source = KnownImages()
        async with database.sessionmaker() as session:
            event, player = await reloaded(session, event, player)
            await events.ask_for_round(session, player=player, event=event, source=source)
        assert len(source.jobs) == 1, "no stock: made on demand as before"
    finally:
        await database.dispose()
