"""Who may see why the machine failed on a round, and when: the game's rule for the explain page and its JSON twin
(app/stats/explain.py computes the explanation once this rule lets it through)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import PlayerRecord, RoundRecord
from app.errors import NotFound
from app.game import disclosure, rounds


async def explainable_round(session: AsyncSession, *, player: PlayerRecord, round_id: str) -> RoundRecord:
    """The round, if this player may see why the machine failed on it: their own (someone else's is missing, as
    with the original image), answered, and not a together image still counting down (404 for all three)."""
    record = await rounds.player_round(session, player=player, round_id=round_id)
    hidden = await disclosure.why_truth_hidden(session, record, await rounds.round_answer(session, round_id))
    if hidden is not None:
        raise NotFound(hidden)
    return record
