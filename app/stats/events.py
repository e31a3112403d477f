"""An event's numbers: participation, humans vs machine with 95% Wilson intervals, accuracy by eps, beat-the-
machine moments, confusions and the room's votes on together images. Read-only queries on the answers table."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AnswerRecord, PlayerRecord, RoundRecord, SharedRoundRecord
from app.game.disclosure import settled
from app.stats.answer_counts import beat_machine_count, count_true
from app.stats.intervals import Proportion


@dataclass(frozen=True)
class EventSummary:
    players: int
    answers: int
    human: Proportion
    model: Proportion
    beat_machine: int

    @property
    def humans_ahead(self) -> bool:
        return self.human.successes > self.model.successes


@dataclass(frozen=True)
class EpsRow:
    eps: float
    human: Proportion
    model: Proportion

    @property
    def grey(self) -> int:
        return int(round(self.eps * 255))


@dataclass(frozen=True)
class Moment:
    nickname: str
    true_label: str
    model_label: str
    eps: float
    at: datetime


@dataclass(frozen=True)
class SharedVotes:
    """The room's answers to one together image, next to the model's answer and the truth."""

    number: int
    shared_round_id: str
    eps: float
    true_label: int
    model_label: int
    votes: tuple[int, ...]  # one count per class
    closes_at: datetime

    @property
    def total(self) -> int:
        return sum(self.votes)

    @property
    def room_label(self) -> int | None:
        """The room's most common answer (None before anyone votes)."""
        if not self.total:
            return None
        return max(range(len(self.votes)), key=lambda i: self.votes[i])

    @property
    def room_right(self) -> bool:
        return self.room_label == self.true_label

    @property
    def room_beat_machine(self) -> bool:
        return self.room_right and self.model_label != self.true_label


@dataclass
class Confusions:
    """Counts of (true class, answer) for people and for the model, over the event's answered rounds."""

    human: Counter[tuple[int, int]] = field(default_factory=Counter)
    model: Counter[tuple[int, int]] = field(default_factory=Counter)

    def top(self, who: str, limit: int = 5) -> list[tuple[int, int, int]]:
        counts = self.human if who == "human" else self.model
        wrong = [(t, a, n) for (t, a), n in counts.items() if t != a]
        return sorted(wrong, key=lambda row: (-row[2], row[0], row[1]))[:limit]

    def matrix(self, who: str, classes: int) -> list[list[int]]:
        counts = self.human if who == "human" else self.model
        return [[counts.get((t, a), 0) for a in range(classes)] for t in range(classes)]


async def summary(session: AsyncSession, event_id: str) -> EventSummary:
    row = (
        await session.execute(
            select(
                func.count(AnswerRecord.id),
                count_true(AnswerRecord.correct),
                count_true(AnswerRecord.model_correct),
                beat_machine_count(),
            )
            .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
            .where(RoundRecord.event_id == event_id, settled())
        )
    ).one()
    players = await session.scalar(
        select(func.count(PlayerRecord.id)).where(PlayerRecord.event_id == event_id, PlayerRecord.removed.is_(False))
    )
    answers = int(row[0])
    return EventSummary(
        players=int(players or 0),
        answers=answers,
        human=Proportion(int(row[1]), answers),
        model=Proportion(int(row[2]), answers),
        beat_machine=int(row[3]),
    )


async def accuracy_by_eps(session: AsyncSession, event_id: str) -> list[EpsRow]:
    rows = (
        await session.execute(
            select(
                RoundRecord.eps,
                func.count(AnswerRecord.id),
                count_true(AnswerRecord.correct),
                count_true(AnswerRecord.model_correct),
            )
            .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
            .where(RoundRecord.event_id == event_id, settled())
            .group_by(RoundRecord.eps)
            .order_by(RoundRecord.eps)
        )
    ).all()
    # Budgets are whole grey levels; merge float noise so one level is one row.
    merged: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for eps, n, human, model in rows:
        bucket = merged[int(round(float(eps) * 255))]
        bucket[0] += int(n)
        bucket[1] += int(human)
        bucket[2] += int(model)
    return [
        EpsRow(eps=level / 255.0, human=Proportion(h, n), model=Proportion(m, n))
        for level, (n, h, m) in sorted(merged.items())
    ]


async def beat_moments(
    session: AsyncSession, event_id: str, class_names: Sequence[str], *, limit: int = 6
) -> list[Moment]:
    rows = (
        await session.execute(
            select(
                PlayerRecord.nickname,
                RoundRecord.true_label,
                RoundRecord.model_label,
                RoundRecord.eps,
                AnswerRecord.created_at,
            )
            .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
            .join(PlayerRecord, PlayerRecord.id == AnswerRecord.player_id)
            .where(
                RoundRecord.event_id == event_id,
                settled(),
                AnswerRecord.correct.is_(True),
                AnswerRecord.model_correct.is_(False),
                PlayerRecord.removed.is_(False),
            )
            .order_by(AnswerRecord.created_at.desc(), AnswerRecord.id.desc())
            .limit(limit)
        )
    ).all()
    return [
        Moment(nickname=r[0], true_label=class_names[r[1]], model_label=class_names[r[2]], eps=float(r[3]), at=r[4])
        for r in rows
    ]


async def confusions(session: AsyncSession, event_id: str) -> Confusions:
    rows = (
        await session.execute(
            select(RoundRecord.true_label, AnswerRecord.choice, RoundRecord.model_label, func.count(AnswerRecord.id))
            .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
            .where(RoundRecord.event_id == event_id, settled())
            .group_by(RoundRecord.true_label, AnswerRecord.choice, RoundRecord.model_label)
        )
    ).all()
    result = Confusions()
    for truth, choice, model_label, n in rows:
        result.human[(int(truth), int(choice))] += int(n)
        result.model[(int(truth), int(model_label))] += int(n)
    return result


async def shared_votes(
    session: AsyncSession, event_id: str, classes: int, *, only: str | None = None
) -> list[SharedVotes]:
    """Votes per together image, oldest first (or just the one with id ``only``)."""
    query = select(SharedRoundRecord).where(SharedRoundRecord.event_id == event_id).order_by(SharedRoundRecord.number)
    if only is not None:
        query = query.where(SharedRoundRecord.id == only)
    shared = list(await session.scalars(query))
    if not shared:
        return []
    counts = (
        await session.execute(
            select(RoundRecord.shared_round_id, AnswerRecord.choice, func.count(AnswerRecord.id))
            .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
            .where(RoundRecord.shared_round_id.in_([s.id for s in shared]))
            .group_by(RoundRecord.shared_round_id, AnswerRecord.choice)
        )
    ).all()
    votes: dict[str, list[int]] = {s.id: [0] * classes for s in shared}
    for shared_id, choice, n in counts:
        votes[shared_id][int(choice)] += int(n)
    return [
        SharedVotes(
            number=s.number,
            shared_round_id=s.id,
            eps=s.eps,
            true_label=s.true_label,
            model_label=s.model_label,
            votes=tuple(votes[s.id]),
            closes_at=s.closes_at,
        )
        for s in shared
    ]


async def answered_rounds(session: AsyncSession, event_id: str) -> int:
    return int(
        await session.scalar(
            select(func.count(AnswerRecord.id))
            .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
            .where(RoundRecord.event_id == event_id, settled())
        )
        or 0
    )
