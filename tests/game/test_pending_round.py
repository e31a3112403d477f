"""One pending round per player: asking again hands back the open round, and two requests at once (plain play or
an own-pace event) still leave one open round, because the database decides the race."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from app.db.session import open_database
from app.db.tables import AnswerRecord, RoundRecord
from app.game import events, play
from app.game.catalogue import Catalogue
from app.ml.service.contracts import ImageJob, ImageResult
from tests.conftest import make_settings
from tests.game.events.records import CATALOG
from tests.game.test_rounds import CLASSES, KnownImages

pytestmark = pytest.mark.anyio


class MeetingImages(KnownImages):
    """KnownImages whose attacks wait until ``parties`` of them are running, so concurrent requests overlap."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.parties = parties
        self.arrived = 0
        self.all_there = asyncio.Event()

    async def generate(self, job: ImageJob) -> ImageResult:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.all_there.set()
        await asyncio.wait_for(self.all_there.wait(), timeout=10)
        return await super().generate(job)


async def unanswered_rounds(session_factory: object, player_id: str) -> int:
    async with session_factory() as session:  # type: ignore[operator]
        return int(
            await session.scalar(
                select(func.count(RoundRecord.id))
                .outerjoin(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
                .where(RoundRecord.player_id == player_id, AnswerRecord.id.is_(None))
            )
            or 0
        )


async def test_plain_play_hands_back_the_open_round(database_url: str) -> None:
    settings = make_settings(database_url, opponent="fashion-cnn", attack="pgd")
    database = open_database(database_url)
    service = KnownImages()
    try:
        async with database.sessionmaker() as session:
            player, _token, _event = await play.join(session, nickname="again")
            first = await play.new_round(
                session, Catalogue(service), player=player, choice=play.RoundChoice(), settings=settings
            )
            again = await play.new_round(
                session,
                Catalogue(service),
                player=player,
                choice=play.RoundChoice(opponent="fashion-forest"),
                settings=settings,
            )
            assert again.record.id == first.record.id and len(service.jobs) == 1
            first_id, truth = first.record.id, CLASSES[first.record.true_label]
            await play.answer(session, Catalogue(service), player=player, round_id=first_id, choice=truth)
            after = await play.new_round(
                session, Catalogue(service), player=player, choice=play.RoundChoice(), settings=settings
            )
            assert after.record.id != first_id
    finally:
        await database.dispose()


async def test_concurrent_plain_rounds_leave_one_open_round(database_url: str) -> None:
    settings = make_settings(database_url, opponent="fashion-cnn", attack="pgd")
    database = open_database(database_url)
    service = MeetingImages(parties=2)
    try:
        async with database.sessionmaker() as session:
            player, _token, _event = await play.join(session, nickname="racer")
            player_id = player.id

        async def ask() -> str:
            async with database.sessionmaker() as session:
                mine = await session.get(type(player), player_id)
                view = await play.new_round(
                    session, Catalogue(service), player=mine, choice=play.RoundChoice(), settings=settings
                )
                return view.record.id

        first, second = await asyncio.gather(ask(), ask())
        assert first == second
        assert await unanswered_rounds(database.sessionmaker, player_id) == 1
    finally:
        await database.dispose()


async def test_concurrent_own_pace_rounds_leave_one_open_round(database_url: str) -> None:
    database = open_database(database_url)
    service = MeetingImages(parties=2)
    body = {"name": "W", "phases": [{"opponent": "fashion-cnn", "attack": "pgd"}], "style": "own_pace"}
    _name, _pack, event_settings = events.validate_settings(body, catalog=CATALOG)
    try:
        async with database.sessionmaker() as session:
            event, _host = await events.create_event(session, name="W", pack="fashion", settings=event_settings)
            events.start(event)
            await session.commit()
            player, _token, _event = await play.join(session, nickname="racer", event_code=event.code)
            player_id = player.id

        async def ask() -> str:
            async with database.sessionmaker() as session:
                mine = await session.get(type(player), player_id)
                settings = make_settings(database_url)
                view = await play.new_round(
                    session, Catalogue(service), player=mine, choice=play.RoundChoice(), settings=settings
                )
                return view.record.id

        first, second = await asyncio.gather(ask(), ask())
        assert first == second
        assert await unanswered_rounds(database.sessionmaker, player_id) == 1
    finally:
        await database.dispose()
