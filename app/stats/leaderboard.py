"""Leaderboard and the humans-vs-machine tally, read from the answers table."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AnswerRecord, PlayerRecord, RoundRecord
from app.game.disclosure import settled
from app.stats.answer_counts import beat_machine_count, count_true
from app.stats.human_vs_model import HumanVsModel
from app.stats.intervals import Proportion


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    player_id: str
    nickname: str
    score: int
    rounds: int
    correct: int
    beat_machine: int
    best_streak: int

    @property
    def accuracy(self) -> float:
        return Proportion(self.correct, self.rounds).value


@dataclass(frozen=True)
class Tally(HumanVsModel):
    """Human and model accuracy on the very same answered rounds."""

    beat_machine: int

    @property
    def answers(self) -> int:
        return self.n


async def leaderboard(session: AsyncSession, *, limit: int = 20, event_id: str | None = None) -> list[LeaderboardRow]:
    """Everyone (events included) by default; with ``event_id`` only that event's players, less any the host
    removed."""
    # The score is summed from settled answers rather than read from the player, so that points earned on a
    # together image still counting down do not show on the board (see app.game.disclosure).
    score = func.coalesce(func.sum(AnswerRecord.points), 0)
    query = (
        select(
            PlayerRecord.id,
            PlayerRecord.nickname,
            score,
            PlayerRecord.best_streak,
            func.count(AnswerRecord.id),
            count_true(AnswerRecord.correct),
            beat_machine_count(),
        )
        .join(AnswerRecord, AnswerRecord.player_id == PlayerRecord.id)
        .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
        .where(settled())
        .group_by(PlayerRecord.id, PlayerRecord.nickname, PlayerRecord.best_streak)
        .order_by(score.desc(), func.count(AnswerRecord.id).asc(), PlayerRecord.id)
        .limit(limit)
    )
    if event_id is not None:
        query = query.where(PlayerRecord.event_id == event_id, PlayerRecord.removed.is_(False))
    rows = (await session.execute(query)).all()
    return [
        LeaderboardRow(
            rank=rank,
            player_id=row[0],
            nickname=row[1],
            score=int(row[2]),
            best_streak=row[3],
            rounds=row[4],
            correct=int(row[5]),
            beat_machine=int(row[6]),
        )
        for rank, row in enumerate(rows, start=1)
    ]


async def tally(session: AsyncSession, *, event_id: str | None = None) -> Tally:
    """All answers (events included) by default; with ``event_id`` only that event's."""
    query = select(
        func.count(AnswerRecord.id),
        count_true(AnswerRecord.correct),
        count_true(AnswerRecord.model_correct),
        beat_machine_count(),
    )
    # people against the machine on what an image shows: guess-the-machine answers measure something else
    query = query.join(RoundRecord, RoundRecord.id == AnswerRecord.round_id).where(
        settled(), RoundRecord.task == "classify"
    )
    if event_id is not None:
        query = query.where(RoundRecord.event_id == event_id)
    row = (await session.execute(query)).one()
    return Tally(n=row[0], human_correct=int(row[1]), model_correct=int(row[2]), beat_machine=int(row[3]))
