"""Who plays in an event: joining with a nickname unique in the event, the host removing a player, the roster."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import EventRecord, PlayerRecord
from app.errors import Conflict, Forbidden, NotFound
from app.game.events.lifecycle import status_of
from app.game.players import create_player, validate_nickname


async def join(session: AsyncSession, *, event: EventRecord, nickname: str) -> tuple[PlayerRecord, str]:
    """A new player in the event, committed. Late joiners are welcome until the host locks joining or the event
    ends."""
    if status_of(event) == "ended":
        raise Conflict(messages.EVENT_ENDED)
    if event.locked:
        raise Conflict(messages.EVENT_LOCKED)
    nickname = validate_nickname(nickname)
    key = nickname.casefold()[:24]
    taken = await session.scalar(
        select(PlayerRecord.id).where(PlayerRecord.event_id == event.id, PlayerRecord.nickname_key == key)
    )
    if taken is not None:
        raise Conflict(messages.NICKNAME_TAKEN)
    try:
        async with session.begin_nested():  # two phones racing for one nickname: the unique constraint decides
            player, token = await create_player(session, nickname=nickname)
            player.event_id = event.id
            player.nickname_key = key
            await session.flush()
    except IntegrityError:
        raise Conflict(messages.NICKNAME_TAKEN) from None
    await session.commit()
    return player, token


async def remove_player(session: AsyncSession, *, event: EventRecord, player_id: str) -> PlayerRecord:
    """The host takes a player out of the event (committed): their phone can no longer play or answer."""
    player = await session.get(PlayerRecord, player_id)
    if player is None or player.event_id != event.id:
        raise NotFound(messages.PLAYER_NOT_IN_EVENT)
    player.removed = True
    await session.commit()
    return player


def check_player_active(player: PlayerRecord) -> None:
    if player.removed:
        raise Forbidden(messages.PLAYER_REMOVED)


def player_in_event(player: PlayerRecord | None, event: EventRecord) -> PlayerRecord:
    """The browser's player, if they joined this event and are still in it."""
    if player is None or player.event_id != event.id:
        raise Forbidden(messages.PLAYER_NOT_IN_EVENT_WEB)
    check_player_active(player)
    return player


async def event_players(session: AsyncSession, event: EventRecord) -> list[PlayerRecord]:
    result = await session.scalars(
        select(PlayerRecord).where(PlayerRecord.event_id == event.id).order_by(PlayerRecord.created_at)
    )
    return list(result)


async def player_count(session: AsyncSession, event: EventRecord) -> int:
    count = await session.scalar(
        select(func.count(PlayerRecord.id)).where(PlayerRecord.event_id == event.id, PlayerRecord.removed.is_(False))
    )
    return int(count or 0)


async def event_of_player(session: AsyncSession, player: PlayerRecord) -> EventRecord | None:
    if player.event_id is None:
        return None
    return await session.get(EventRecord, player.event_id)
