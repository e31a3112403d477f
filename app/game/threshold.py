"""A player's perceptual threshold from their staircase, next to the machine's.

The game's staircase is 1-up/1-down (app/game/difficulty.py): a right answer makes the next image harder, a wrong one
easier, so it hovers around the budget where the player is right half the time (Levitt 1971). The classic estimate
is the mean budget at the reversals (where the run of answers changes direction), skipping the first one, which
still carries the start. The machine's counterpart is its card's ``min_eps``: the smallest budget at which PGD-20
fools it on half of the images it gets right when clean. Both are the eps of 50% accuracy on attacked images.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AnswerRecord, RoundRecord
from app.game.difficulty import Staircase, eps_as_grey_levels

TARGET_ACCURACY = 0.5
SKIP_REVERSALS = 1
MIN_REVERSALS = 3  # after the skipped ones: fewer than this and there is no estimate yet


@dataclass(frozen=True)
class Threshold:
    opponent: str
    rounds: int
    reversals: int
    eps: float | None  # None until there are enough reversals
    eps_text: str | None
    spread: float | None  # standard deviation of the reversal budgets
    model_eps: float
    model_eps_text: str
    target_accuracy: float = TARGET_ACCURACY


def reversal_budgets(trials: Sequence[tuple[float, bool]]) -> list[float]:
    """The budgets at which the run of answers changed direction: the eps of each answer that differs in
    correctness from the one before it."""
    return [eps for (eps, correct), (_, before) in zip(trials[1:], trials, strict=False) if correct != before]


def estimate(opponent: str, trials: Sequence[tuple[float, bool]], model_eps: float) -> Threshold:
    reversals = reversal_budgets(trials)
    used = reversals[SKIP_REVERSALS:]
    eps = statistics.fmean(used) if len(used) >= MIN_REVERSALS else None
    spread = statistics.stdev(used) if eps is not None and len(used) > 1 else None
    return Threshold(
        opponent=opponent,
        rounds=len(trials),
        reversals=len(reversals),
        eps=eps,
        eps_text=None if eps is None else eps_as_grey_levels(eps),
        spread=None if spread is None or math.isnan(spread) else spread,
        model_eps=model_eps,
        model_eps_text=eps_as_grey_levels(model_eps),
    )


async def player_thresholds(session: AsyncSession, player_id: str, min_eps_of: dict[str, float]) -> list[Threshold]:
    """One estimate per opponent the player has faced on their own staircase: plain (non-event), adversarial
    rounds, oldest first. Budgets are read as staircase steps (L∞ grey levels) whatever the attack's norm."""
    rows = (
        await session.execute(
            select(RoundRecord.opponent, RoundRecord.level, AnswerRecord.correct)
            .join(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
            .where(
                RoundRecord.player_id == player_id,
                RoundRecord.event_id.is_(None),
                RoundRecord.condition == "adversarial",
                RoundRecord.task == "classify",
            )
            .order_by(AnswerRecord.created_at, AnswerRecord.id)
        )
    ).all()
    trials: dict[str, list[tuple[float, bool]]] = {}
    for opponent, level, correct in rows:
        if opponent not in min_eps_of:
            continue
        staircase = Staircase.from_min_eps(min_eps_of[opponent])
        trials.setdefault(opponent, []).append((staircase.eps(level), bool(correct)))
    return [estimate(name, series, min_eps_of[name]) for name, series in sorted(trials.items())]
