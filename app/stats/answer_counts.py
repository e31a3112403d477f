"""The SQL aggregates over the answers table that the tally, the leaderboard and an event's report count with."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, func

from app.db.tables import AnswerRecord


def count_true(column: Any) -> ColumnElement[Any]:
    """How many rows have ``column`` true (0, not NULL, when none do)."""
    return func.coalesce(func.sum(cast(column, Integer)), 0)


def beat_machine_count() -> ColumnElement[Any]:
    """How many answers were right where the model was wrong."""
    beat = case((AnswerRecord.correct & ~AnswerRecord.model_correct, 1), else_=0)
    return func.coalesce(func.sum(beat), 0)
