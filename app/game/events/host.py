"""The host's controls, one transaction each: the buttons of the host console and the JSON host actions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import EventRecord
from app.errors import ArenaError, NotFound
from app.game import rounds
from app.game.events.lifecycle import end, next_phase, pause, set_locked, start
from app.game.events.together import open_shared_round


async def apply_host_action(
    session: AsyncSession, *, event: EventRecord, action: str, source: rounds.RoundSource
) -> None:
    """The actions: start, resume, pause, lock, unlock, next-phase, next-image, end."""
    if action in ("start", "resume"):
        start(event)
    elif action == "pause":
        pause(event)
    elif action == "lock":
        set_locked(event, True)
    elif action == "unlock":
        set_locked(event, False)
    elif action == "next-phase":
        next_phase(event)
    elif action == "next-image":
        await open_shared_round(session, event=event, source=source)
    elif action == "end":
        end(event)
    else:
        raise NotFound(messages.EVENT_ACTION_UNKNOWN)


async def host_action(session: AsyncSession, *, event: EventRecord, action: str, source: rounds.RoundSource) -> None:
    """Apply one host control and commit it; one the event's state refuses (409) is rolled back. The caller has
    checked the host token."""
    try:
        await apply_host_action(session, event=event, action=action, source=source)
    except ArenaError as error:
        if error.status_code == 409:
            await session.rollback()
        raise
    await session.commit()
