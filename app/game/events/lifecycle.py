"""An event's life: created in the lobby (committed here), then running ⇄ paused, then ended (by the host or by its
time limit). The state changes only touch the record in memory; the host's controls (``host.py``) commit them."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import EventRecord
from app.errors import Conflict
from app.game.events.clock import aware, utcnow
from app.game.events.codes import code_is_taken, hash_secret, new_join_code
from app.game.events.settings import EventSettings, Phase, event_settings

Status = Literal["lobby", "running", "paused", "ended"]


async def create_event(
    session: AsyncSession, *, name: str, pack: str, settings: EventSettings
) -> tuple[EventRecord, str]:
    """Store (and commit) a new event in the lobby. Returns it with the host token, which is shown once and stored
    hashed."""
    host_token = secrets.token_urlsafe(32)
    for _attempt in range(10):
        code = new_join_code()
        if not await code_is_taken(session, code):
            break
    else:  # 31**6 codes: ten collisions in a row means something else is wrong
        raise RuntimeError("could not find a free join code")
    event = EventRecord(
        id=uuid.uuid4().hex,
        code=code,
        name=name,
        host_token_hash=hash_secret(host_token),
        created_at=utcnow(),
        pack=pack,
        settings=settings.to_json(),
        status="lobby",
        locked=False,
        phase=0,
        shared_rounds=0,
    )
    session.add(event)
    await session.commit()
    return event, host_token


def status_of(event: EventRecord, now: datetime | None = None) -> Status:
    """The status as players see it: a running event whose time limit has passed has ended, even before anyone
    writes that down."""
    now = now or utcnow()
    ends_at = aware(event.ends_at)
    if event.status == "running" and ends_at is not None and now >= ends_at:
        return "ended"
    status: Status = event.status  # type: ignore[assignment]
    return status


def seconds_left(event: EventRecord, now: datetime | None = None) -> float | None:
    now = now or utcnow()
    if event.status == "paused":
        return event.remaining_s
    ends_at = aware(event.ends_at)
    if ends_at is None or status_of(event, now) != "running":
        return None
    return max(0.0, (ends_at - now).total_seconds())


def current_phase(event: EventRecord) -> Phase:
    phases = event_settings(event).phases
    return phases[min(event.phase, len(phases) - 1)]


def refuse_if_ended(event: EventRecord, now: datetime) -> None:
    if status_of(event, now) == "ended":
        raise Conflict(messages.EVENT_ENDED)


def require_running(event: EventRecord, now: datetime) -> None:
    status = status_of(event, now)
    if status == "ended":
        raise Conflict(messages.EVENT_ENDED)
    if status == "lobby":
        raise Conflict(messages.EVENT_NOT_STARTED)
    if status == "paused":
        raise Conflict(messages.EVENT_PAUSED)


def start(event: EventRecord, now: datetime | None = None) -> None:
    """Start from the lobby, or resume after a pause (the time limit, if any, resumes where it stopped)."""
    now = now or utcnow()
    refuse_if_ended(event, now)
    if event.status == "running":
        raise Conflict(messages.EVENT_ALREADY_STARTED)
    limit = event_settings(event).time_limit_s
    if event.status == "lobby":
        event.started_at = now
        if limit is not None:
            event.ends_at = now + timedelta(seconds=limit)
    elif event.remaining_s is not None:
        event.ends_at = now + timedelta(seconds=event.remaining_s)
    event.remaining_s = None
    event.status = "running"


def pause(event: EventRecord, now: datetime | None = None) -> None:
    now = now or utcnow()
    refuse_if_ended(event, now)
    if event.status != "running":
        raise Conflict(messages.EVENT_NOT_RUNNING)
    ends_at = aware(event.ends_at)
    if ends_at is not None:
        event.remaining_s = max(0.0, (ends_at - now).total_seconds())
        event.ends_at = None
    event.status = "paused"


def set_locked(event: EventRecord, locked: bool, now: datetime | None = None) -> None:
    refuse_if_ended(event, now or utcnow())
    event.locked = locked


def next_phase(event: EventRecord, now: datetime | None = None) -> Phase:
    refuse_if_ended(event, now or utcnow())
    if event.phase + 1 >= len(event_settings(event).phases):
        raise Conflict(messages.EVENT_LAST_PHASE)
    event.phase += 1
    return current_phase(event)


def end(event: EventRecord, now: datetime | None = None) -> None:
    """Ending is idempotent: a host pressing End twice, or after the time ran out, gets the same ended event."""
    now = now or utcnow()
    if event.status != "ended":
        ends_at = aware(event.ends_at)
        event.ended_at = ends_at if ends_at is not None and ends_at <= now else now
        event.status = "ended"
        event.remaining_s = None
