"""Answer exports read each page in a short session: slow downloaders, paused mid-stream, hold no database
connection, so a pool of one still serves everyone else (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text

from app.db.session import open_database
from app.game import play
from app.game.catalogue import Catalogue
from app.stats import export
from tests.conftest import make_settings
from tests.game.test_rounds import CLASSES, KnownImages

pytestmark = pytest.mark.anyio

ANSWERS = 3
DOWNLOADERS = 5


async def test_slow_downloaders_do_not_exhaust_the_pool(database_url: str) -> None:
    settings = make_settings(database_url, opponent="fashion-cnn", attack="pgd")
    service = KnownImages()
    database = open_database(database_url, pool_size=1, max_overflow=0, pool_timeout=2)
    try:
        async with database.sessionmaker() as session:
            for index in range(ANSWERS):
                player, _token, _event = await play.join(session, nickname=f"p{index}")
                view = await play.new_round(
                    session, Catalogue(service), player=player, choice=play.RoundChoice(), settings=settings
                )
                truth = CLASSES[view.record.true_label]
                await play.answer(session, Catalogue(service), player=player, round_id=view.record.id, choice=truth)

        paused = 0
        everyone_paused = asyncio.Event()
        go_on = asyncio.Event()

        async def slow_download() -> list[str]:
            nonlocal paused
            chunks: list[str] = []
            stream = export.stream_answers(database.sessionmaker, "jsonl", lambda _pack: CLASSES, page_size=1)
            async for chunk in stream:
                chunks.append(chunk)
                if len(chunks) == 1:  # a client that stops reading after the first row
                    paused += 1
                    if paused == DOWNLOADERS:
                        everyone_paused.set()
                    await go_on.wait()
            return chunks

        downloads = [asyncio.create_task(slow_download()) for _ in range(DOWNLOADERS)]
        await asyncio.wait_for(everyone_paused.wait(), timeout=30)
        async with database.sessionmaker() as other:  # the one connection is free for anyone else
            assert await other.scalar(text("select 1")) == 1
        go_on.set()
        for chunks in await asyncio.gather(*downloads):
            assert len([json.loads(line) for line in chunks]) == ANSWERS
    finally:
        await database.dispose()
