"""The stock of images made ahead: claimed once each under concurrency on both databases, none lost when a round
fails, kept across a restart."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from app.db.session import Database, open_database
from app.db.tables import AttackedImage
from app.game import events, rounds, stock
from app.game.plan import new_job
from app.ml.service.contracts import ImageJob, ImageResult
from tests.game.events.records import settings
from tests.game.test_rounds import PLAN, KnownImages

pytestmark = pytest.mark.anyio
STOCKED = 30


def a_job() -> ImageJob:
    source = KnownImages()
    return new_job(PLAN, source.opponent_info(PLAN.opponent), 8 / 255)


async def image_for(job: ImageJob, seed: int) -> dict[str, object]:
    image = await KnownImages().generate(dataclasses.replace(job, seed=seed))
    plan = {**rounds.plan_columns(PLAN, {"norm": "linf", "threat_model": "white-box"}, job.eps), "pack": "fashion"}
    return {**plan, **rounds.image_columns(image)}


async def stock_up(database: Database, job: ImageJob, seeds: range) -> None:
    async with database.sessionmaker() as session:
        for seed in seeds:
            session.add(stock.stocked_image(job, await image_for(job, seed)))
        await session.commit()


async def claim_and_commit(database: Database, job: ImageJob) -> int | None:
    async with database.sessionmaker() as session:
        claimed = await stock.claim(session, job)
        await session.commit()
    return None if claimed is None else int(claimed["seed"])  # type: ignore[call-overload]


async def unclaimed(database: Database, job: ImageJob) -> int:
    async with database.sessionmaker() as session:
        return await stock.unclaimed(session, job)


def test_a_stocked_image_gives_the_round_exactly_the_columns_it_does_not_take_from_its_plan() -> None:
    image = ImageResult(
        clean=np.zeros((2, 2), dtype=np.uint8),
        adversarial=np.zeros((2, 2), dtype=np.uint8),
        true_label=0,
        clean_label=0,
        clean_confidence=1.0,
        adversarial_label=0,
        adversarial_probs=(1.0,),
        linf=0.0,
        image_index=0,
        seed=0,
    )
    assert set(rounds.image_columns(image)) == set(AttackedImage.__annotations__) - stock.SET_BY_THE_ROUND


async def test_concurrent_claims_serve_every_image_once_and_lose_none(database_url: str) -> None:
    database = open_database(database_url)
    job = a_job()
    other = dataclasses.replace(job, eps=12 / 255)
    try:
        await stock_up(database, job, range(STOCKED))
        await stock_up(database, other, range(100, 105))
        claims = await asyncio.gather(*(claim_and_commit(database, job) for _ in range(STOCKED + 10)))
        served = [seed for seed in claims if seed is not None]
        assert len(served) == len(set(served)), "no image served twice"
        assert len(served) + await unclaimed(database, job) == STOCKED, "none lost"
        while (seed := await claim_and_commit(database, job)) is not None:  # PostgreSQL may have skipped some
            served.append(seed)
        assert sorted(served) == list(range(STOCKED)), "each image once, only from its own key"
        assert await unclaimed(database, other) == 5
    finally:
        await database.dispose()


async def test_a_claim_rolled_back_with_its_round_goes_back_to_the_stock(database_url: str) -> None:
    database = open_database(database_url)
    job = a_job()
    try:
        await stock_up(database, job, range(1))
        async with database.sessionmaker() as session:
            assert await stock.claim(session, job) is not None
            await session.rollback()
        assert await claim_and_commit(database, job) == 0
        assert await claim_and_commit(database, job) is None
    finally:
        await database.dispose()


async def test_the_stock_survives_a_restart(database_url: str) -> None:
    job = a_job()
    before = open_database(database_url)
    await stock_up(before, job, range(3))
    await before.dispose()
    after = open_database(database_url)
    try:
        assert await unclaimed(after, job) == 3
        assert await claim_and_commit(after, job) == 0
    finally:
        await after.dispose()


async def an_event(database: Database) -> str:
    async with database.sessionmaker() as session:
        event, _token = await events.create_event(session, name="W", pack="fashion", settings=settings(rounds=1))
    return event.id


async def claim_for_event_and_commit(database: Database, event_id: str, keys: list[str]) -> int | None:
    async with database.sessionmaker() as session:
        claimed = await stock.claim_for_event(session, event_id, keys)
        await session.commit()
    return None if claimed is None else int(claimed["seed"])


async def test_concurrent_event_claims_serve_each_of_the_events_images_once_under_any_of_its_keys(
    database_url: str,
) -> None:
    database = open_database(database_url)
    job = a_job()
    other_budget, not_asked = dataclasses.replace(job, eps=12 / 255), dataclasses.replace(job, eps=16 / 255)
    keys = [stock.stock_key(job), stock.stock_key(other_budget)]
    try:
        event_id, other_event_id = await an_event(database), await an_event(database)
        async with database.sessionmaker() as session:
            for seed in range(STOCKED):
                stocked_job = job if seed % 2 else other_budget
                session.add(stock.stocked_image(stocked_job, await image_for(stocked_job, seed), event_id=event_id))
            for seed in range(100, 103):  # the other event's, and a key the round does not ask for
                session.add(stock.stocked_image(job, await image_for(job, seed), event_id=other_event_id))
                session.add(stock.stocked_image(not_asked, await image_for(not_asked, seed + 10), event_id=event_id))
            await session.commit()
        claims = await asyncio.gather(
            *(claim_for_event_and_commit(database, event_id, keys) for _ in range(STOCKED + 10))
        )
        served = [seed for seed in claims if seed is not None]
        assert len(served) == len(set(served)), "no image served twice"
        while (seed := await claim_for_event_and_commit(database, event_id, keys)) is not None:
            served.append(seed)  # PostgreSQL may have skipped some being claimed
        assert sorted(served) == list(range(STOCKED)), "each of the event's images under its keys once, none lost"
        assert await unclaimed(database, not_asked) == 3
        assert await unclaimed(database, job) == 3, "the other event's images are left"
        assert await claim_for_event_and_commit(database, event_id, []) is None
    finally:
        await database.dispose()
