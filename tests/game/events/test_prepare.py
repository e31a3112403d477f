"""Preparing an event: its stock is rounds × expected players, made before it starts with its progress reported,
and its players' rounds are then claimed from the stock, exactly as stored, without asking the model."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, open_database
from app.db.tables import EventRecord, PlayerRecord, RoundRecord, StockImageRecord, attacked_image_columns
from app.errors import Conflict, Invalid
from app.game import events, rounds
from app.game.events import prepare
from app.game.plan import new_job
from app.game.pool import ReadyRoundPool
from app.ml.service.contracts import ImageJob, ImageResult
from tests.fakes import FakeModelService
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
        seen: list[prepare.StockProgress] = []
        assert await progress_of(database, event) == prepare.StockProgress(made=0, target=6)
        done = await prepare.prepare_event(database, maker, event.code, on_progress=seen.append)
        assert done == prepare.StockProgress(made=6, target=6) and done.done
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


async def progress_of(database: Database, event: EventRecord) -> prepare.StockProgress:
    async with database.sessionmaker() as session:
        return await prepare.stock_progress(session, event)


def known_image(job: ImageJob) -> ImageResult:
    clean = np.full((28, 28), 100, dtype=np.uint8)
    probs = (0.1,) + (0.0,) * 8 + (0.9,)
    return ImageResult(clean, clean + 8, 0, 0, 0.99, 9, probs, 8 / 255, image_index=job.image_index, seed=job.seed)


async def test_the_background_maker_waits_while_a_player_waits_for_the_model(database_url: str) -> None:
    database = open_database(database_url)
    info = KnownImages().opponent_info("fashion-cnn")
    service = FakeModelService(info, known_image, waits=lambda job: job.any_image)  # players' jobs wait at the gate
    pool = ReadyRoundPool(service, size=1, ttl_s=60)
    await pool.start()
    maker: asyncio.Task[None] | None = None
    try:
        async with database.sessionmaker() as session:
            event, _token = await events.create_event(
                session, name="W", pack="fashion", settings=settings(rounds=2, expected_players=1)
            )
        service.gate = asyncio.Event()
        player = asyncio.create_task(pool.generate(new_job(rounds.RoundPlan(opponent="fashion-cnn"), info, 8 / 255)))
        await asyncio.sleep(0)
        maker = asyncio.create_task(
            prepare.prepare_forever(database, pool, until_idle=pool.until_idle, interval_s=0.01)
        )
        await asyncio.sleep(0.3)
        assert [job for job in service.jobs if not job.any_image] == [], "nothing prepared while a player waits"
        assert (await progress_of(database, event)).made == 0
        service.gate.set()
        await player
        async with asyncio.timeout(30):
            while not (await progress_of(database, event)).done:
                await asyncio.sleep(0.01)
        assert (await progress_of(database, event)) == prepare.StockProgress(made=2, target=2)
    finally:
        if maker is not None:
            maker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maker
        await pool.stop()
        await database.dispose()


async def prepared_and_started(
    database: Database, *, players: int, **raw: object
) -> tuple[EventRecord, list[PlayerRecord]]:
    async with database.sessionmaker() as session:
        event, _token = await events.create_event(session, name="W", pack="fashion", settings=settings(**raw))
    await prepare.prepare_event(database, KnownImages(), event.code)
    joined = []
    async with database.sessionmaker() as session:
        event = await events.event_by_code(session, event.code)
        for number in range(players):
            player, _ = await events.join(session, event=event, nickname=f"p{number}")
            joined.append(player)
        events.start(event)
        await session.commit()
    return event, joined


async def play_all(database: Database, event: EventRecord, player: PlayerRecord, source: KnownImages) -> None:
    async with database.sessionmaker() as session:
        event, player = await reloaded(session, event, player)
        while True:
            try:
                record = await events.ask_for_round(session, player=player, event=event, source=source)
            except Conflict:
                return  # the event's rounds are done
            await events.submit_answer(
                session, player=player, event=event, round_id=record.id, choice="Bag", source=source
            )


async def test_every_round_of_a_prepared_event_is_served_whichever_condition_and_budget_it_would_have_drawn(
    database_url: str,
) -> None:
    """Five budget levels and two conditions: ten keys. Rounds that claimed only the key they drew missed the stock
    while other keys still held images; a round now takes any image of its phase, with its condition and budget."""
    database = open_database(database_url)
    mix = {"adversarial": 0.5, "clean": 0.5}
    try:
        event, players = await prepared_and_started(
            database, players=4, rounds=3, expected_players=4, eps_min=4 / 255, eps_max=12 / 255, conditions=mix
        )
        async with database.sessionmaker() as session:
            stocked = {row.seed: attacked_image_columns(row) for row in await session.scalars(select(StockImageRecord))}
        assert len(stocked) == 12
        source = KnownImages()
        for player in players:
            await play_all(database, event, player, source)
        assert source.jobs == [], "no round waited for the model"
        async with database.sessionmaker() as session:
            served = list(await session.scalars(select(RoundRecord)))
            left = await session.scalar(select(func.count()).where(StockImageRecord.claimed_at.is_(None)))
        assert len(served) == 12 and left == 0
        assert sorted(record.seed for record in served) == sorted(stocked), "each image once"
        for record in served:
            assert attacked_image_columns(record) == stocked[record.seed], "condition and budget are the image's"
    finally:
        await database.dispose()


async def test_a_round_claims_only_images_its_phase_and_the_events_mix_can_draw(database_url: str) -> None:
    database = open_database(database_url)
    try:
        event, players = await prepared_and_started(database, players=1, rounds=2, expected_players=1, eps=8 / 255)
        async with database.sessionmaker() as session:
            event = await events.event_by_code(session, event.code)
            # the host moves to a budget the stock was not made at: its images no longer fit the event's rules
            event.settings = settings(rounds=2, expected_players=1, eps=16 / 255).to_json()
            await session.commit()
        source = KnownImages()
        await play_all(database, event, players[0], source)
        assert len(source.jobs) == 2 and {job.eps for job in source.jobs} == {16 / 255}, "made on demand"
        async with database.sessionmaker() as session:
            claimed = await session.scalar(select(func.count()).where(StockImageRecord.claimed_at.is_not(None)))
        assert claimed == 0, "no image of the old budget was served"
    finally:
        await database.dispose()
