"""The reads of rounds and answers that more than one layer needs, in one place: routes never write SQL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AnswerRecord, RoundRecord


async def round_by_id(session: AsyncSession, round_id: str) -> RoundRecord | None:
    return await session.get(RoundRecord, round_id)


async def shown_png(session: AsyncSession, round_id: str) -> bytes | None:
    """The PNG an image round shows its player, read alone (not the row with its original's PNG too); None when
    there is no image round with that id."""
    return await session.scalar(
        select(RoundRecord.adversarial_png).where(RoundRecord.id == round_id, RoundRecord.kind != "text")
    )


async def round_answer(session: AsyncSession, round_id: str) -> AnswerRecord | None:
    """The round's one answer, if it has been answered."""
    return await session.scalar(select(AnswerRecord).where(AnswerRecord.round_id == round_id))


async def latest_unanswered_round(session: AsyncSession, player_id: str) -> RoundRecord | None:
    """The player's most recent round still waiting for an answer."""
    return await session.scalar(
        select(RoundRecord)
        .outerjoin(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
        .where(RoundRecord.player_id == player_id, AnswerRecord.id.is_(None))
        .order_by(RoundRecord.created_at.desc())
        .limit(1)
    )


async def pending_round(session: AsyncSession, player_id: str) -> RoundRecord | None:
    """The player's one round waiting for its answer (plain play or own pace), if any."""
    return await session.scalar(select(RoundRecord).where(RoundRecord.pending_player_id == player_id))
