"""Who may see why the machine failed on a round, and when: the game's rule for the explain page and its JSON twin
(app/stats/explain.py computes the explanation once this rule lets it through)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import PlayerRecord, RoundRecord
from app.errors import NotFound
from app.game import events, rounds


async def explainable_round(session: AsyncSession, *, player: PlayerRecord, round_id: str) -> RoundRecord:
    """The round, if this player may see why the machine failed on it: their own (someone else's is missing, as
    with the original image), answered, and not a together image still counting down (404 for all three)."""
    record = await rounds.player_round(session, player=player, round_id=round_id)
    if await rounds.round_answer(session, round_id) is None:
        raise NotFound(messages.REVEAL_NOT_READY)
    if await events.truth_hidden_until(session, record) is not None:
        raise NotFound(messages.TRUTH_HIDDEN_UNTIL_CLOSE)
    return record
