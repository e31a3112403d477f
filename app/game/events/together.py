"""Together events: the host shows the room one image at a time, attacked once and copied to every player who
asks; it counts down, and its truth stays hidden until the countdown and a short grace for late answers are over."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import EventRecord, PlayerRecord, RoundRecord, SharedRoundRecord, attacked_image_columns
from app.errors import Conflict
from app.game import rounds, text
from app.game.events.clock import aware, utcnow
from app.game.events.lifecycle import current_phase, refuse_if_ended, require_running
from app.game.events.settings import event_settings

ANSWER_GRACE_S = 1.0  # a together answer sent as the countdown hits zero still counts


async def current_shared_round(session: AsyncSession, event: EventRecord) -> SharedRoundRecord | None:
    return await session.scalar(
        select(SharedRoundRecord)
        .where(SharedRoundRecord.event_id == event.id)
        .order_by(SharedRoundRecord.number.desc())
        .limit(1)
    )


async def shared_round_by_number(session: AsyncSession, event: EventRecord, number: int) -> SharedRoundRecord | None:
    return await session.scalar(
        select(SharedRoundRecord).where(SharedRoundRecord.event_id == event.id, SharedRoundRecord.number == number)
    )


def reveals_at(closes_at: datetime | None) -> datetime | None:
    """When a shared image reveals: its countdown *and* the grace for late answers are over, so nobody can read the
    truth off the big screen and still get an answer in. Until then it takes answers and hides its truth; from
    then on every screen, phone and page may show it. The one moment everything about a together image keys on."""
    moment = aware(closes_at)
    return None if moment is None else moment + timedelta(seconds=ANSWER_GRACE_S)


def shared_is_open(shared: SharedRoundRecord | None, now: datetime | None = None) -> bool:
    return shared is not None and open_until(shared.closes_at, now)


def open_until(closes_at: datetime | None, now: datetime | None = None) -> bool:
    """Still open, truth still hidden: before the image reveals (:func:`reveals_at`)."""
    moment = reveals_at(closes_at)
    return moment is not None and (now or utcnow()) < moment


def unattended_changes(
    event: EventRecord, shared: SharedRoundRecord | None, *, shared_open: bool, running: bool
) -> list[datetime]:
    """When what the event's screens show changes with nobody acting: the room's image revealing, the time limit
    running out."""
    moments = [reveals_at(shared.closes_at)] if shared is not None and shared_open else []
    if running and event.ends_at is not None:
        moments.append(aware(event.ends_at))
    return [moment for moment in moments if moment is not None]


async def open_shared_round(
    session: AsyncSession, *, event: EventRecord, source: rounds.RoundSource
) -> SharedRoundRecord:
    """The host shows the room the next image: attacked ONCE, then copied to each player who asks for it."""
    now = utcnow()
    settings = event_settings(event)
    refuse_if_ended(event, now)
    if settings.style != "together":
        raise Conflict(messages.EVENT_NOT_TOGETHER)
    require_running(event, now)
    current = await current_shared_round(session, event)
    if shared_is_open(current, now):
        raise Conflict(messages.EVENT_SHARED_OPEN)
    if settings.rounds is not None and event.shared_rounds >= settings.rounds:
        raise Conflict(messages.EVENT_ALL_SHARED_DONE)
    phase = current_phase(event)
    if text.is_text_pack(event.pack):  # a text event (issue #18): the room reads one text
        return await text.open_shared_text(
            session,
            event=event,
            source=source,
            opponent=phase.opponent,
            attack=phase.attack,
            mix=settings.conditions,
            round_seconds=settings.round_seconds,
        )
    info = source.opponent_info(phase.opponent)
    plan = rounds.RoundPlan(
        opponent=phase.opponent, attack=phase.attack, steps=settings.steps, early_stop=settings.early_stop
    )
    plan = rounds.condition_plan(source, plan, settings.conditions)  # one condition for the whole room's image
    levels = settings.eps_levels()
    eps = levels[event.shared_rounds % len(levels)]  # cycle through the budgets so each gets its share
    attack = rounds.attack_entry(source, plan.attack)
    budget = rounds.round_budget(attack["norm"], eps, info)
    job = rounds.new_job(plan, info, budget)
    image = await source.generate(job)
    opened = utcnow()  # the countdown starts when the image exists, not when the host clicked
    event.shared_rounds += 1
    shared = SharedRoundRecord(
        id=uuid.uuid4().hex,
        event_id=event.id,
        number=event.shared_rounds,
        phase=event.phase,
        opens_at=opened,
        closes_at=opened + timedelta(seconds=settings.round_seconds),
        pack=info.pack,
        flash_ms=settings.flash_ms,
        **rounds.plan_columns(plan, attack, budget),
        **rounds.image_columns(image),
    )
    session.add(shared)
    await session.flush()
    return shared


async def player_copy(session: AsyncSession, *, shared: SharedRoundRecord, player: PlayerRecord) -> RoundRecord | None:
    """The player's own round on the shared image, if they have asked for it."""
    return await session.scalar(
        select(RoundRecord).where(RoundRecord.player_id == player.id, RoundRecord.shared_round_id == shared.id)
    )


async def copy_for_player(session: AsyncSession, *, shared: SharedRoundRecord, player: PlayerRecord) -> RoundRecord:
    """The player's own round on the shared image (same pixels, same model answer); made once per player."""
    existing = await player_copy(session, shared=shared, player=player)
    if existing is not None:
        return existing
    record = RoundRecord(
        id=rounds.new_round_id(),
        player_id=player.id,
        event_id=shared.event_id,
        phase=shared.phase,
        shared_round_id=shared.id,
        created_at=utcnow(),
        level=0,
        **attacked_image_columns(shared),
    )
    try:
        async with session.begin_nested():
            session.add(record)
            await session.flush()
    except IntegrityError:  # the same player's other tab got there first
        existing = await player_copy(session, shared=shared, player=player)
        if existing is None:
            raise
        return existing
    return record
