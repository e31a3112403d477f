"""Playing in an event: the next round a player gets (own pace: by the event's rules; together: their copy of the
room's image), what their phone shows, and answers with the event's extra checks."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import AnswerRecord, EventRecord, PlayerRecord, RoundRecord, SharedRoundRecord
from app.errors import ArenaError, Conflict
from app.game import rounds, stock, text
from app.game.events.clock import utcnow
from app.game.events.fixed_set import start_fixed_round
from app.game.events.joining import check_player_active
from app.game.events.lifecycle import current_phase, require_running, status_of
from app.game.events.prepare import draw_event_round, phase_stock_keys
from app.game.events.settings import event_settings
from app.game.events.together import (
    copy_for_player,
    current_shared_round,
    player_copy,
    shared_is_open,
)


async def open_round(session: AsyncSession, player: PlayerRecord) -> RoundRecord | None:
    """The player's latest unanswered round in their event, if any."""
    return await session.scalar(
        select(RoundRecord)
        .outerjoin(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
        .where(RoundRecord.player_id == player.id, AnswerRecord.id.is_(None))
        .order_by(RoundRecord.created_at.desc())
        .limit(1)
    )


async def latest_round(session: AsyncSession, player: PlayerRecord) -> RoundRecord | None:
    return await session.scalar(
        select(RoundRecord).where(RoundRecord.player_id == player.id).order_by(RoundRecord.created_at.desc()).limit(1)
    )


async def rounds_played(session: AsyncSession, player: PlayerRecord) -> int:
    return int(await session.scalar(select(func.count(RoundRecord.id)).where(RoundRecord.player_id == player.id)) or 0)


async def round_tally(session: AsyncSession, player: PlayerRecord) -> tuple[int, int]:
    """How many rounds the player has, and how many of them wait for an answer, in one statement: a new round's
    request needs both, and asks for the unanswered one itself only when there is one."""
    rounds_of_player = RoundRecord.player_id == player.id
    counted = select(func.count(RoundRecord.id), func.count(RoundRecord.id) - func.count(AnswerRecord.id))
    played, unanswered = (
        await session.execute(
            counted.select_from(RoundRecord)
            .outerjoin(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
            .where(rounds_of_player)
        )
    ).one()
    return int(played), int(unanswered)


async def next_round(
    session: AsyncSession,
    *,
    player: PlayerRecord,
    event: EventRecord,
    source: rounds.RoundSource,
    release_connection: bool = False,
    client_key: str = "",
) -> RoundRecord:
    """The round an event player gets when they ask for one: their unanswered round again if there is one,
    otherwise a new one by the event's rules (own pace) or their copy of the room's current image (together).
    ``client_key``: whose fair share of the model worker a new image or text takes (rounds.start_round)."""
    check_player_active(player)
    now = utcnow()
    require_running(event, now)
    settings = event_settings(event)
    if settings.style == "together":
        shared = await current_shared_round(session, event)
        if not shared_is_open(shared, now) or shared is None:
            raise Conflict(messages.EVENT_WAIT_NEXT_IMAGE)
        copy = await copy_for_player(session, shared=shared, player=player)
        if await rounds.round_answer(session, copy.id) is not None:
            raise Conflict(messages.EVENT_WAIT_NEXT_IMAGE)
        return copy
    if settings.mode == "policy":  # the room plays pick the moments (app/game/policy.py)
        raise Conflict(messages.EVENT_POLICY_ONLY)
    played, unanswered = await round_tally(session, player)
    if unanswered and (pending := await open_round(session, player)) is not None:
        return pending
    if settings.rounds is not None and played >= settings.rounds:
        raise Conflict(messages.EVENT_ROUNDS_DONE)
    if text.is_text_pack(event.pack):  # a text event (issue #18): a text round by the same rules
        phase = current_phase(event)
        return await text.start_text_round(
            session,
            player=player,
            source=source,
            opponent=phase.opponent,
            attack=phase.attack,
            mix=settings.conditions,
            budget=secrets.choice(text.EVENT_LEVELS),
            event_id=event.id,
            phase=event.phase,
            release_connection=release_connection,
            client_key=client_key,
        )
    if settings.fixed_set:  # the next item of the set everyone sees: no model call, no connection to release
        return await start_fixed_round(session, player=player, event=event, settings=settings)
    phase = current_phase(event)
    task = rounds.draw_task(settings.guess_share)
    image = await stock.claim_for_event(session, event.id, phase_stock_keys(source, settings, phase))
    if image is not None:  # prepared: any of the phase's images, its condition and budget with it
        return await rounds.start_stocked_round(
            session,
            player=player,
            source=source,
            image=image,
            event_id=event.id,
            phase=event.phase,
            flash_ms=settings.flash_ms,
            task=task,
        )
    plan, eps = draw_event_round(source, settings, phase)
    record = await rounds.start_round(
        session,
        player=player,
        source=source,
        plan=plan,
        eps=eps,
        event_id=event.id,
        phase=event.phase,
        release_connection=release_connection,
        flash_ms=settings.flash_ms,
        task=task,
        stocked=True,
        client_key=client_key,
    )
    if release_connection:
        await session.refresh(event)  # releasing the connection expired the event
    return record


async def answer_round(
    session: AsyncSession,
    *,
    player: PlayerRecord,
    round_id: str,
    choice: str,
    source: rounds.RoundSource,
    shown_ms: float | None = None,
) -> tuple[RoundRecord, AnswerRecord, EventRecord | None]:
    """Answer any round. An event round is refused once the event has ended, when the player was removed, or
    when a together image's countdown is over; everything else is the ordinary game's rule."""
    record = await rounds.player_round(session, player=player, round_id=round_id)
    event: EventRecord | None = None
    if record.event_id is not None:
        check_player_active(player)
        event = await session.get(EventRecord, record.event_id)
        now = utcnow()
        if event is None or status_of(event, now) == "ended":
            raise Conflict(messages.EVENT_ENDED)
        if record.shared_round_id is not None:
            shared = await session.get(SharedRoundRecord, record.shared_round_id)
            if not shared_is_open(shared, now):  # it has revealed: late answers would know the truth
                raise Conflict(messages.EVENT_TIME_UP)
    if text.is_text(record):
        answer = await text.answer_text_round(session, player=player, record=record, choice=choice, source=source)
        return record, answer, event
    record, answer = await rounds.answer_round(
        session, player=player, round_id=round_id, choice=choice, source=source, shown_ms=shown_ms
    )
    return record, answer, event


async def refused(session: AsyncSession, error: ArenaError, event: EventRecord, player: PlayerRecord) -> None:
    """A request the event's state refuses (409) leaves nothing behind, and the event and player reloaded for the
    page that tells the player why (a rollback expires everything)."""
    if error.status_code != 409:
        return
    await session.rollback()
    await session.refresh(event)
    await session.refresh(player)


async def ask_for_round(
    session: AsyncSession,
    *,
    player: PlayerRecord,
    event: EventRecord,
    source: rounds.RoundSource,
    client_key: str = "",
) -> RoundRecord:
    """``next_round``, committed, with the connection released while the image is made."""
    try:
        record = await next_round(
            session, player=player, event=event, source=source, release_connection=True, client_key=client_key
        )
    except ArenaError as error:
        await refused(session, error, event, player)
        raise
    await session.commit()
    return record


async def submit_answer(
    session: AsyncSession,
    *,
    player: PlayerRecord,
    event: EventRecord,
    round_id: str,
    choice: str,
    source: rounds.RoundSource,
    shown_ms: float | None = None,
) -> None:
    """``answer_round`` for a player of ``event``, committed before this returns: the answer is on disk before the
    reveal is sent and before the screens hear of it."""
    try:
        await answer_round(session, player=player, round_id=round_id, choice=choice, source=source, shown_ms=shown_ms)
    except ArenaError as error:
        await refused(session, error, event, player)
        raise
    await session.commit()


async def phone_round(
    session: AsyncSession, *, event: EventRecord, player: PlayerRecord, shared: SharedRoundRecord | None
) -> RoundRecord | None:
    """The round the player's phone shows now. Together: their copy of the room's latest image ``shared`` (made,
    and committed, while it is open); own pace: their unanswered round, else their latest one."""
    if event_settings(event).style == "together":
        if shared is None:
            return None
        if shared_is_open(shared) and status_of(event) == "running":
            record = await copy_for_player(session, shared=shared, player=player)
            await session.commit()
            return record
        return await player_copy(session, shared=shared, player=player)
    record = await open_round(session, player)
    if record is None:
        record = await latest_round(session, player)
    return record
