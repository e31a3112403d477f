"""Text rounds in the statistics (issue #18): class names of the text pack beside the image packs', and the text
section of the stats: human and machine accuracy by condition and budget (share of words), with 95% Wilson
intervals, over the settled answers to text rounds only."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AnswerRecord, RoundRecord
from app.game.disclosure import settled
from app.game.text import TEXT_CLASS_NAMES, TEXT_KIND, is_text_pack
from app.ml.packs import get_pack  # torch-free: packs only read idx files
from app.stats.intervals import wilson_interval


def pack_class_names(pack: str) -> tuple[str, ...]:
    """The class names of a data pack, the text pack's included (exports, the bundle, the stats page)."""
    if is_text_pack(pack):
        return TEXT_CLASS_NAMES
    return tuple(get_pack(pack).class_names)


@dataclass(frozen=True)
class TextCell:
    """Answers to text rounds of one (opponent, condition, budget)."""

    opponent: str
    condition: str
    budget: float
    n: int
    human_correct: int
    model_correct: int
    words_changed: float  # mean share of the words that changed
    similarity: float | None  # mean MiniLM similarity of shown to original

    @property
    def human_accuracy(self) -> float:
        return self.human_correct / self.n if self.n else 0.0

    @property
    def model_accuracy(self) -> float:
        return self.model_correct / self.n if self.n else 0.0

    @property
    def human_interval(self) -> tuple[float, float]:
        return wilson_interval(self.human_correct, self.n)

    @property
    def model_interval(self) -> tuple[float, float]:
        return wilson_interval(self.model_correct, self.n)

    def as_dict(self) -> dict[str, object]:
        return {
            "opponent": self.opponent,
            "condition": self.condition,
            "budget": self.budget,
            "n": self.n,
            "human_accuracy": self.human_accuracy,
            "human_interval": list(self.human_interval),
            "model_accuracy": self.model_accuracy,
            "model_interval": list(self.model_interval),
            "words_changed": self.words_changed,
            "similarity": self.similarity,
        }


async def text_table(session: AsyncSession, *, event_id: str | None = None) -> list[TextCell]:
    """One cell per (opponent, condition, budget) of the settled answers to text rounds, ordered by those keys."""
    query = (
        select(
            RoundRecord.opponent,
            RoundRecord.condition,
            RoundRecord.eps,
            AnswerRecord.correct,
            AnswerRecord.model_correct,
            RoundRecord.linf,
            RoundRecord.similarity,
        )
        .join(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
        .where(RoundRecord.kind == TEXT_KIND, RoundRecord.task == "classify", settled())
    )
    if event_id is not None:
        query = query.where(RoundRecord.event_id == event_id)
    groups: dict[tuple[str, str, float], list[Any]] = defaultdict(list)
    for row in (await session.execute(query)).all():
        groups[(row[0], row[1], round(float(row[2]), 4))].append(row)
    cells = []
    for (opponent, condition, budget), rows in sorted(groups.items()):
        similarities = [float(r[6]) for r in rows if r[6] is not None]
        cells.append(
            TextCell(
                opponent=opponent,
                condition=condition,
                budget=budget,
                n=len(rows),
                human_correct=sum(bool(r[3]) for r in rows),
                model_correct=sum(bool(r[4]) for r in rows),
                words_changed=sum(float(r[5]) for r in rows) / len(rows),
                similarity=sum(similarities) / len(similarities) if similarities else None,
            )
        )
    return cells
