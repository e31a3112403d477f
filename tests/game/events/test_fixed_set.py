"""Fixed-set events (issue 15): the set is made once (rounds images, whoever plays), every player sees each of its
items once in an order of their own, no fresh round ever claims an item, and the answers give agreement per item.
On both databases."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select

from app import messages
from app.db.session import Database, open_database
from app.db.tables import EventRecord, PlayerRecord, RoundRecord, StockImageRecord
from app.errors import Conflict, Invalid, ServiceBusy
from app.game import events, stock
from app.game.events import prepare
from app.game.events.fixed_set import fixed_items
from app.stats.agreement import event_agreement
from tests.game.events.records import settings
from tests.game.test_rounds import KnownImages

pytestmark = pytest.mark.anyio
ITEMS = 6
PLAYERS = 4


def test_a_fixed_set_is_its_rounds_images_once_and_needs_own_pace_with_a_round_limit() -> None:
    assert settings(rounds=ITEMS, expected_players=200, image_mode="fixed").stock_target == ITEMS
    assert settings(rounds=ITEMS, image_mode="fixed").stock_target == ITEMS, "no need to guess the players"
    assert settings(rounds=ITEMS, expected_players=2).image_mode == "fresh", "fresh stays the default"
    for wrong in (
        {"rounds": ITEMS, "image_mode": "fixed", "style": "together"},
        {"image_mode": "fixed"},
        {"time_limit_s": 600, "image_mode": "fixed"},
        {"rounds": ITEMS, "image_mode": "same"},
    ):
        with pytest.raises(Invalid, match="fixed set"):
            settings(**wrong)


async def fixed_event(database: Database, maker: KnownImages) -> EventRecord:
    async with database.sessionmaker() as session:
        event, _token = await events.create_event(
            session,
            name="Psychophysics",
            pack="fashion",
            settings=settings(rounds=ITEMS, image_mode="fixed", eps_min=4 / 255, eps_max=12 / 255),
        )
    done = await prepare.prepare_event(database, maker, event.code)
    assert done == prepare.StockProgress(made=ITEMS, target=ITEMS)
    return event


async def join_all(database: Database, event: EventRecord, count: int) -> list[PlayerRecord]:
    async with database.sessionmaker() as session:
        found = await events.event_by_code(session, event.code)
        players = [(await events.join(session, event=found, nickname=f"p{n}"))[0] for n in range(count)]
        events.start(found)
        await session.commit()
    return players


async def play_all(database: Database, event: EventRecord, player: PlayerRecord, choose: str) -> list[int]:
    """Every round of the set for one player: the items they were shown, in order."""
    source = KnownImages()
    shown = []
    async with database.sessionmaker() as session:
        found_event = await session.get(EventRecord, event.id)
        found_player = await session.get(PlayerRecord, player.id)
        assert found_event is not None and found_player is not None
        for _ in range(ITEMS):
            record = await events.ask_for_round(session, player=found_player, event=found_event, source=source)
            assert record.item_id is not None
            shown.append(record.item_id)
            await events.submit_answer(
                session, player=found_player, event=found_event, round_id=record.id, choice=choose, source=source
            )
        with pytest.raises(Conflict, match="all the rounds"):
            await events.ask_for_round(session, player=found_player, event=found_event, source=source)
    assert source.jobs == [], "a fixed-set round never waits for the model"
    return shown


async def test_every_player_sees_every_item_once_in_their_own_order(database_url: str) -> None:
    database = open_database(database_url)
    maker = KnownImages()
    try:
        event = await fixed_event(database, maker)
        assert len(maker.jobs) == ITEMS
        players = await join_all(database, event, PLAYERS)
        orders = await asyncio.gather(*(play_all(database, event, p, "Bag") for p in players))
        async with database.sessionmaker() as session:
            items = await fixed_items(session, event.id)
            assert len(items) == ITEMS
            for order in orders:
                assert sorted(order) == items, "each item once"
            assert len({tuple(order) for order in orders}) > 1, "orders are each player's own"
            # Every player's round on an item shows the item's very pixels, budget and machine answer.
            rows = list(await session.scalars(select(RoundRecord).where(RoundRecord.event_id == event.id)))
            made = {row.id: row for row in await session.scalars(select(StockImageRecord))}
            for row in rows:
                item = made[row.item_id or -1]
                assert (row.adversarial_png, row.eps, row.model_label, row.seed) == (
                    item.adversarial_png,
                    item.eps,
                    item.model_label,
                    item.seed,
                )
            # The budgets take the event's levels in turn: a balanced design.
            assert Counter(round(item.eps * 255) for item in made.values()) == {4: 2, 6: 1, 8: 1, 10: 1, 12: 1}
            # Items are never claimed: a fresh round with the same settings cannot take one.
            assert all(item.claimed_at is None and item.fixed for item in made.values())
            assert await stock.claim(session, maker.jobs[0]) is None
            found = await event_agreement(session, event.id)
        assert found.answers == ITEMS * PLAYERS and [item.item_id for item in found.items] == items
        assert all(item.pairwise == 1.0 and item.modal_share == 1.0 for item in found.items), "everyone said Bag"
    finally:
        await database.dispose()


async def test_a_player_ahead_of_the_preparation_is_asked_to_retry(database_url: str) -> None:
    database = open_database(database_url)
    try:
        async with database.sessionmaker() as session:
            event, _token = await events.create_event(
                session, name="Early", pack="fashion", settings=settings(rounds=ITEMS, image_mode="fixed")
            )
        [player] = await join_all(database, event, 1)
        async with database.sessionmaker() as session:
            found_event = await session.get(EventRecord, event.id)
            found_player = await session.get(PlayerRecord, player.id)
            assert found_event is not None and found_player is not None
            with pytest.raises(ServiceBusy) as refused:
                await events.ask_for_round(session, player=found_player, event=found_event, source=KnownImages())
            assert refused.value.message == messages.EVENT_ITEMS_PREPARING
    finally:
        await database.dispose()
