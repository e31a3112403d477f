"""Players: nicknames, tokens and lookups. No HTTP here."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from app import messages
from app.db.tables import PlayerRecord
from app.errors import Invalid, Unauthorized

NICKNAME_MAX = 24


def validate_nickname(raw: object) -> str:
    if not isinstance(raw, str):
        raise Invalid(messages.NICKNAME_INVALID)
    nickname = raw.strip()
    if not 1 <= len(nickname) <= NICKNAME_MAX or not nickname.isprintable():
        raise Invalid(messages.NICKNAME_INVALID)
    return nickname


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_player(session: AsyncSession, *, nickname: str) -> tuple[PlayerRecord, str]:
    """Duplicates are allowed: the leaderboard tells players apart by their (unguessable) id, not their name."""
    token = secrets.token_urlsafe(32)
    player = PlayerRecord(
        id=uuid.uuid4().hex,
        nickname=validate_nickname(nickname),
        token_hash=hash_token(token),
        score=0,
        streak=0,
        best_streak=0,
        level=0,
    )
    session.add(player)
    await session.flush()
    return player, token


async def player_by_token(session: AsyncSession, token: str) -> PlayerRecord:
    """The token's player, with their event (if any) read in the same statement: nearly every request that signs in
    by token reads the event next (a new event round, an answer's event check) and then finds it in the session."""
    player = await session.scalar(
        select(PlayerRecord)
        .outerjoin(PlayerRecord.event)
        .options(contains_eager(PlayerRecord.event))
        .where(PlayerRecord.token_hash == hash_token(token))
    )
    if player is None:
        raise Unauthorized(messages.TOKEN_INVALID)
    return player


async def player_by_id(session: AsyncSession, player_id: str) -> PlayerRecord | None:
    return await session.get(PlayerRecord, player_id)
