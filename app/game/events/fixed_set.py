"""Fixed-set events (issue 15): every player sees the same N images, each once, in their own random order, the
design of a psychophysics experiment, so that people's answers can be compared image by image
(app/stats/agreement.py).

The set is the event's stock (app/game/events/prepare.py) made once: ``rounds`` images marked ``fixed``, which no
fresh round ever claims. A player's next round is the first item they have not seen in their own order (items
sorted by a hash of event, player and item, a random permutation per player that nobody else can predict); the
round keeps the item's id (``RoundRecord.item_id``), and a unique (player, item) index makes "each item once per
player" hold even when two requests race. The round takes every column from the item, its budget and attack
included, so that all players' answers to an item are answers to the very same pixels.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import EventRecord, PlayerRecord, RoundRecord, StockImageRecord, attacked_image_columns
from app.errors import Conflict, ServiceBusy
from app.game import rounds
from app.game.events.settings import EventSettings


def order_key(event_id: str, player_id: str, item_id: int) -> bytes:
    """Where the item comes in the player's own order of the set."""
    return hashlib.sha256(f"{event_id}:{player_id}:{item_id}".encode()).digest()


async def fixed_items(session: AsyncSession, event_id: str) -> list[int]:
    """The ids of the event's fixed set made so far, oldest first."""
    found = await session.scalars(
        select(StockImageRecord.id)
        .where(StockImageRecord.event_id == event_id, StockImageRecord.fixed.is_(True))
        .order_by(StockImageRecord.id)
    )
    return list(found)


async def next_item(
    session: AsyncSession, *, event: EventRecord, player: PlayerRecord, settings: EventSettings
) -> StockImageRecord:
    """The player's next unseen item. Refused with EVENT_ROUNDS_DONE once they have seen the whole set, and with
    503 + Retry-After while the rest of the set is still being made."""
    items = await fixed_items(session, event.id)
    seen = set(
        await session.scalars(
            select(RoundRecord.item_id).where(RoundRecord.player_id == player.id, RoundRecord.item_id.is_not(None))
        )
    )
    left = [item for item in items if item not in seen]
    if not left:
        if len(items) >= (settings.rounds or 0):
            raise Conflict(messages.EVENT_ROUNDS_DONE)
        raise ServiceBusy(messages.EVENT_ITEMS_PREPARING)
    chosen = min(left, key=lambda item: order_key(event.id, player.id, item))
    record = await session.get(StockImageRecord, chosen)
    if record is None:  # the id was just read in this transaction
        raise ServiceBusy(messages.EVENT_ITEMS_PREPARING)
    return record


async def start_fixed_round(
    session: AsyncSession, *, player: PlayerRecord, event: EventRecord, settings: EventSettings
) -> RoundRecord:
    """The player's round on their next item of the event's fixed set, stored as their pending round."""
    item = await next_item(session, event=event, player=player, settings=settings)
    columns = {name: value for name, value in attacked_image_columns(item).items() if name != "flash_ms"}
    task = rounds.draw_task(settings.guess_share)
    foil = None
    if task == "guess_machine":
        foil = rounds.pick_foil(item.true_label, item.model_label, item.model_probs)
    record = RoundRecord(
        id=rounds.new_round_id(),
        player_id=player.id,
        event_id=event.id,
        phase=event.phase,
        created_at=datetime.now(UTC),
        level=player.level,
        flash_ms=settings.flash_ms,
        task=task,
        foil=foil,
        pending_player_id=player.id,
        item_id=item.id,
        **columns,
    )
    return await rounds.store_pending(session, player=player, record=record)
