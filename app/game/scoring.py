"""Points for one answer.

+1 for a correct answer; +2 more when the player is right and the machine is wrong ("beat the machine");
+1 more while on a streak of 3 or more correct answers in a row. A wrong answer scores 0 and ends the streak.
"""

from __future__ import annotations

from dataclasses import dataclass

CORRECT_POINTS = 1
BEAT_MACHINE_BONUS = 2
STREAK_BONUS = 1
STREAK_BONUS_FROM = 3


@dataclass(frozen=True)
class Score:
    points: int
    streak: int
    beat_machine: bool


def score_answer(*, correct: bool, model_correct: bool, streak_before: int) -> Score:
    if not correct:
        return Score(points=0, streak=0, beat_machine=False)
    streak = streak_before + 1
    beat = not model_correct
    points = CORRECT_POINTS + (BEAT_MACHINE_BONUS if beat else 0) + (STREAK_BONUS if streak >= STREAK_BONUS_FROM else 0)
    return Score(points=points, streak=streak, beat_machine=beat)
