"""Which answers may be counted in anything shown to others (tallies, leaderboards, exports, the big screen).

An answer on a together image whose countdown is still running must not appear anywhere yet: its row carries the
true label and the model's answer, and even a tally moving from 0% to 100% tells the room whether the first
answer was right. Such answers become visible once the countdown and its grace period are over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, or_, select

from app.db.tables import RoundRecord, SharedRoundRecord
from app.game.events import ANSWER_GRACE_S


def settled(now: datetime | None = None) -> ColumnElement[bool]:
    """A condition on RoundRecord (join it): the round is not part of a together image that is still open."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=ANSWER_GRACE_S)
    still_open = select(SharedRoundRecord.id).where(SharedRoundRecord.closes_at > cutoff)
    return or_(RoundRecord.shared_round_id.is_(None), RoundRecord.shared_round_id.not_in(still_open))
