"""The reveal rule: when a round's truth may be shown. Its truth is everything that tells whether an answer was
right: the true label, the machine's answer and scores, the answer's correctness and points, the original image
and the perturbation.

A round's truth shows once it is answered and, for a player's copy of a together image, once the room's image has
revealed (its countdown and the grace for late answers are over: ``events.reveals_at``). Until then the answer is
only acknowledged, and it counts nowhere that others see: not in tallies, leaderboards, exports or the big
screen (``settled``), nor in a shown score (``shown_score``, ``pending_points``), since even a score moving from 0
to 3 tells the room "right, and the machine was fooled". Every page, fragment, image, reply and statistic that
can show any of this asks here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import AnswerRecord, PlayerRecord, RoundRecord, SharedRoundRecord, TextValidationRecord
from app.game.events.clock import utcnow
from app.game.events.together import ANSWER_GRACE_S, reveals_at, shared_is_open


async def truth_hidden_until(session: AsyncSession, record: RoundRecord) -> datetime | None:
    """When a round belongs to a together image that has not revealed yet, the moment it reveals; None when its
    truth may be shown now (to its player, once answered)."""
    if record.shared_round_id is None:
        return None
    shared = await session.get(SharedRoundRecord, record.shared_round_id)
    if shared is None or not shared_is_open(shared):
        return None
    return reveals_at(shared.closes_at)


async def why_truth_hidden(session: AsyncSession, record: RoundRecord, answered: AnswerRecord | None) -> str | None:
    """The reason a round's truth may not be shown to its player now, or None when it may."""
    if answered is None:
        return messages.REVEAL_NOT_READY
    if await truth_hidden_until(session, record) is not None:
        return messages.TRUTH_HIDDEN_UNTIL_CLOSE
    return None


def reveal_cutoff(now: datetime | None = None) -> datetime:
    """A together image has revealed when its closes_at is at or before this (reveals_at(closes_at) <= now, written
    so the database can compare the stored column)."""
    return (now or utcnow()) - timedelta(seconds=ANSWER_GRACE_S)


def settled(now: datetime | None = None) -> ColumnElement[bool]:
    """The rule as a condition on RoundRecord (join it): the round is not a copy of a together image that has not
    revealed yet, so its answer may be counted in anything shown to others."""
    unrevealed = select(SharedRoundRecord.id).where(SharedRoundRecord.closes_at > reveal_cutoff(now))
    return or_(RoundRecord.shared_round_id.is_(None), RoundRecord.shared_round_id.not_in(unrevealed))


async def pending_points(session: AsyncSession, player_ids: Iterable[str]) -> dict[str, int]:
    """Points each player has earned on images that have not revealed yet (players without any are left out)."""
    wanted = list(player_ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(RoundRecord.player_id, func.sum(AnswerRecord.points))
        .join(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
        .where(RoundRecord.player_id.in_(wanted), RoundRecord.shared_round_id.is_not(None), not_(settled()))
        .group_by(RoundRecord.player_id)
    )
    return {player_id: int(points or 0) for player_id, points in rows.all()}


async def shown_score(session: AsyncSession, player: PlayerRecord) -> int:
    """The player's score as anyone may see it, the player included: without points still hidden."""
    if player.event_id is None:  # only an event's together images hide anything
        return player.score
    pending = await pending_points(session, [player.id])
    return player.score - pending.get(player.id, 0)


async def shown_scores(session: AsyncSession, players: Iterable[PlayerRecord]) -> dict[str, int]:
    """:func:`shown_score` for many players in one query (the host console's and the API's players lists)."""
    listed = list(players)
    pending = await pending_points(session, [p.id for p in listed])
    return {p.id: p.score - pending.get(p.id, 0) for p in listed}


def validation_truth_hidden(record: TextValidationRecord) -> str | None:
    """Why a validation round of a human-written text (app/game/fool_text/validation.py) may not show its truth (the
    original category and text, the machine's answers) now, or None once its one answer is in."""
    return messages.REVEAL_NOT_READY if record.choice is None else None
