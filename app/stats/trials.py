"""The trials science mode counts: one answered classification round each (a person's answer and the model's answer
on the very same pixels), the filters that select them, and the budget buckets they are grouped by. The definitions
of which answers count and of the buckets are in app/stats/science.py's docstring."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AnswerRecord, EventRecord, RoundRecord
from app.game.disclosure import settled

# Guess-the-machine rounds (Zhou & Firestone 2019: pick the machine's answer) score agreement with the machine, not
# classification: they are not trials here.
CLASSIFY = "classify"

NORMS: tuple[str, ...] = ("linf", "l2", "l0", "words")
EPS_BUCKET_DOC = (
    "L-inf and L0 budgets are per-pixel changes on [0,1] images: bucket = round(eps*255) grey levels, written "
    "'linf:8/255' or 'l0:8/255'. L2 budgets are radii in pixel units on [0,1] images: bucket = eps rounded to the "
    "nearest tenth, written 'l2:1.5'. Text rounds' budgets are shares of the words: bucket = round(eps*100) "
    "percent, written 'words:10%'. Budgets of different norms never share a bucket."
)


def eps_bucket(eps: float, norm: str) -> str:
    """The one place budgets are bucketed (app/stats/science.py's docstring defines them)."""
    if norm in ("linf", "l0"):
        return f"{norm}:{round(eps * 255)}/255"
    if norm == "l2":
        return f"l2:{round(eps, 1):.1f}"
    if norm == "words":  # text rounds (issue #18): the share of words the attack could change
        return f"words:{round(eps * 100)}%"
    raise ValueError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}")


def bucket_position(bucket: str) -> tuple[str, float]:
    """(norm, x) of a bucket for sorting and plotting: grey levels for linf/l0, the L2 radius for l2."""
    norm, _, value = bucket.partition(":")
    if norm in ("linf", "l0"):
        return norm, float(value.split("/")[0])
    return norm, float(value.rstrip("%"))


def sort_key(key: str, value: str | None) -> tuple[int, str, float, str]:
    """Orders values of a group key: missing first, eps buckets by norm then size, everything else by text."""
    if value is None:
        return (0, "", 0.0, "")
    if key == "eps_bucket":
        norm, x = bucket_position(value)
        return (1, norm, x, value)
    return (1, "", 0.0, value)


@dataclass(frozen=True)
class Trial:
    """One answered round: a person's answer and the model's answer on the same image."""

    answer_id: str
    answered_at: datetime
    player_id: str
    round_id: str
    shared_image: str | None
    event: str | None  # the event's join code
    pack: str
    opponent: str
    attack: str
    norm: str
    condition: str
    eps: float
    true_label: int
    human_answer: int
    model_answer: int
    human_correct: bool
    model_correct: bool
    response_ms: int = 0
    shown_ms: float | None = None  # flash mode: the on-screen time the browser measured
    timing_flagged: bool | None = None  # flash mode: measurement missing or off by more than a frame

    @property
    def eps_bucket(self) -> str:
        return eps_bucket(self.eps, self.norm)

    def key(self, name: str) -> str | None:
        if name == "eps_bucket":
            return self.eps_bucket
        value: str | None = getattr(self, name)
        return value


@dataclass(frozen=True)
class StatsFilter:
    """Which trials to count. ``since``/``until`` are whole UTC days, both included, on the answer's time."""

    event_id: str | None = None
    pack: str | None = None
    opponent: str | None = None
    attack: str | None = None
    condition: str | None = None
    since: date | None = None
    until: date | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        start = datetime.combine(self.since, time.min, tzinfo=UTC) if self.since else None
        end = datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=UTC) if self.until else None
        return start, end


def filtered(query: Select[Any], filters: StatsFilter) -> Select[Any]:
    """``query`` (over answers joined to their rounds) narrowed to what ``filters`` asks for."""
    for column, value in (
        (RoundRecord.event_id, filters.event_id),
        (RoundRecord.pack, filters.pack),
        (RoundRecord.opponent, filters.opponent),
        (RoundRecord.attack, filters.attack),
        (RoundRecord.condition, filters.condition),
    ):
        if value is not None:
            query = query.where(column == value)
    start, end = filters.bounds()
    if start is not None:
        query = query.where(AnswerRecord.created_at >= start)
    if end is not None:
        query = query.where(AnswerRecord.created_at < end)
    return query


TRIAL_COLUMNS = (
    AnswerRecord.id,
    AnswerRecord.created_at,
    AnswerRecord.player_id,
    RoundRecord.id,
    RoundRecord.shared_round_id,
    EventRecord.code,
    RoundRecord.pack,
    RoundRecord.opponent,
    RoundRecord.attack,
    RoundRecord.norm,
    RoundRecord.condition,
    RoundRecord.eps,
    RoundRecord.true_label,
    AnswerRecord.choice,
    RoundRecord.model_label,
    AnswerRecord.correct,
    AnswerRecord.model_correct,
    AnswerRecord.response_ms,
    AnswerRecord.shown_ms,
    AnswerRecord.timing_flagged,
)


async def load_trials(session: AsyncSession, filters: StatsFilter | None = None) -> list[Trial]:
    """Every countable trial matching the filters, oldest answer first. Only the columns a trial holds are read
    (plain rows, not records: no images, no identity map), since the whole table may be asked for."""
    filters = filters or StatsFilter()
    query = (
        select(*TRIAL_COLUMNS)
        .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
        .outerjoin(EventRecord, EventRecord.id == RoundRecord.event_id)
        .where(settled())
        .order_by(AnswerRecord.created_at, AnswerRecord.id)
    )
    query = filtered(query.where(RoundRecord.task == CLASSIFY), filters)
    rows = (await session.execute(query)).all()
    return [
        Trial(
            answer_id=answer_id,
            answered_at=answered_at if answered_at.tzinfo else answered_at.replace(tzinfo=UTC),
            player_id=player_id,
            round_id=round_id,
            shared_image=shared_image,
            event=code,
            pack=pack,
            opponent=opponent,
            attack=attack,
            norm=norm,
            condition=condition,
            eps=float(eps),
            true_label=true_label,
            human_answer=choice,
            model_answer=model_label,
            human_correct=bool(correct),
            model_correct=bool(model_correct),
            response_ms=response_ms,
            shown_ms=shown_ms,
            timing_flagged=timing_flagged,
        )
        for (
            answer_id,
            answered_at,
            player_id,
            round_id,
            shared_image,
            code,
            pack,
            opponent,
            attack,
            norm,
            condition,
            eps,
            true_label,
            choice,
            model_label,
            correct,
            model_correct,
            response_ms,
            shown_ms,
            timing_flagged,
        ) in rows
    ]


def distinct_values(trials: Iterable[Trial], key: str) -> list[str]:
    values = {trial.key(key) for trial in trials}
    return sorted((v for v in values if v is not None), key=lambda v: sort_key(key, v))


async def filter_choices(session: AsyncSession) -> dict[str, list[str]]:
    """The values each filter can take: those present among answered rounds. Events are not listed: a join code
    lets anyone join a running event, so the stats page takes a code only from someone who already has it."""
    out: dict[str, list[str]] = {}
    for name, column in (
        ("pack", RoundRecord.pack),
        ("opponent", RoundRecord.opponent),
        ("attack", RoundRecord.attack),
        ("condition", RoundRecord.condition),
    ):
        query = select(column).join(AnswerRecord, AnswerRecord.round_id == RoundRecord.id).distinct()
        out[name] = sorted(str(v) for v in await session.scalars(query))
    return out
