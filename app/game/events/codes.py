"""Join codes people type off a projector, the host's secret, and finding an event by either."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import EventRecord
from app.errors import Forbidden, NotFound

# No 0/O, 1/I/L: a code read off a projector is typed right the first time.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6


def new_join_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(raw: str) -> str:
    """What people type: lower case, spaces, a dash in the middle. Anything that cannot be a code is unknown."""
    code = "".join(raw.split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        raise NotFound(messages.EVENT_NOT_FOUND)
    return code


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_host(event: EventRecord, token: str | None) -> None:
    """The host token, compared in constant time against the stored hash. No token and a wrong token are both
    403, with different messages so a host who forgot the header knows what to send."""
    if not token:
        raise Forbidden(messages.HOST_TOKEN_REQUIRED)
    if not secrets.compare_digest(hash_secret(token), event.host_token_hash):
        raise Forbidden(messages.HOST_TOKEN_INVALID)


async def code_is_taken(session: AsyncSession, code: str) -> bool:
    return await session.scalar(select(EventRecord.id).where(EventRecord.code == code)) is not None


async def event_by_code(session: AsyncSession, raw_code: str, *, for_update: bool = False) -> EventRecord:
    code = normalise_code(raw_code)
    query = select(EventRecord).where(EventRecord.code == code)
    if for_update:
        query = query.with_for_update()
    event = await session.scalar(query)
    if event is None:
        raise NotFound(messages.EVENT_NOT_FOUND)
    return event


async def event_by_id(session: AsyncSession, event_id: str) -> EventRecord:
    event = await session.get(EventRecord, event_id)
    if event is None:
        raise NotFound(messages.EVENT_NOT_FOUND)
    return event
