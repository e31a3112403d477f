"""Rounds: what a round is, how it is created, answered once, scored and revealed. No HTTP, no torch.

The model service is passed in (anything with ``generate`` and ``opponent_info``), so these rules are tested
without a server and would run unchanged against a remote model service.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import AnswerRecord, PlayerRecord, RoundRecord
from app.errors import Conflict, Invalid, NotFound
from app.game.difficulty import Staircase, eps_as_grey_levels
from app.game.images import to_png
from app.game.scoring import score_answer
from app.ml.contracts import ImageJob, ImageResult, OpponentInfo


class ImageSource(Protocol):
    async def generate(self, job: ImageJob) -> ImageResult: ...

    def opponent_info(self, name: str) -> OpponentInfo: ...


@dataclass(frozen=True)
class RoundPlan:
    """Which opponent, attack and parameters a new round uses. Chosen by settings today, by events later."""

    opponent: str
    attack: str = "pgd"
    steps: int = 20

    def attack_params(self) -> dict[str, object]:
        # PGD's iterations and random start are the game's choice; any other attack runs with its own defaults.
        if self.attack == "pgd":
            return {"steps": self.steps, "random_start": True}
        return {}


def playable_in_rounds(attack: Mapping[str, Any]) -> bool:
    """Rounds (and events) can play white-box L∞ attacks today: their budget is the grey-level eps the game shows.
    L2/L0 and black-box attacks wait until rounds can store and show their own budgets and query counts."""
    return attack["norm"] == "linf" and attack["threat_model"] == "white-box"


def new_round_id() -> str:
    # 128 random bits, URL-safe: a round id cannot be guessed or enumerated.
    return secrets.token_urlsafe(16)


def staircase_for(info: OpponentInfo) -> Staircase:
    return Staircase.from_min_eps(info.min_eps)


def new_job(plan: RoundPlan, info: OpponentInfo, eps: float) -> ImageJob:
    """One image job for a plan: a random test image the opponent gets right when clean, and a fresh seed."""
    return ImageJob(
        opponent=plan.opponent,
        attack=plan.attack,
        params=ImageJob.freeze_params(plan.attack_params()),
        image_index=secrets.choice(info.eligible_indices),
        eps=eps,
        seed=secrets.randbits(62),
    )


def image_columns(image: ImageResult) -> dict[str, Any]:
    """The columns a round (or a shared image) stores from the model service's result."""
    return {
        "true_label": image.true_label,
        "clean_label": image.clean_label,
        "clean_confidence": image.clean_confidence,
        "model_label": image.adversarial_label,
        "model_confidence": image.adversarial_probs[image.adversarial_label],
        "model_probs": list(image.adversarial_probs),
        "linf": image.linf,
        "clean_png": to_png(image.clean),
        "adversarial_png": to_png(image.adversarial),
    }


async def start_round(
    session: AsyncSession,
    *,
    player: PlayerRecord,
    source: ImageSource,
    plan: RoundPlan,
    eps: float | None = None,
    event_id: str | None = None,
    phase: int | None = None,
    release_connection: bool = False,
) -> RoundRecord:
    """Pick a test image the opponent gets right when clean, attack it at the player's level (or at the given
    eps, as events do), store the round.

    ``release_connection=True`` promises that the session has written nothing yet in this transaction (a request
    that only read the player): the connection then goes back to the pool while the attack runs."""
    info = source.opponent_info(plan.opponent)
    staircase = staircase_for(info)
    level = staircase.clamp(player.level)
    if eps is None:
        eps = staircase.eps(level)
    params = plan.attack_params()
    job = new_job(plan, info, eps)
    # The attack takes a while when the room is busy: give the database connection back to the pool meanwhile
    # (nothing has been written yet), so that a hundred waiting players do not starve everyone else of
    # connections. The rollback expires loaded objects, so the player is read again afterwards.
    release = release_connection and not (session.new or session.dirty or session.deleted)
    if release:
        await session.rollback()
    image = await source.generate(job)
    if release:
        await session.refresh(player)
    record = RoundRecord(
        id=new_round_id(),
        player_id=player.id,
        event_id=event_id,
        phase=phase,
        created_at=datetime.now(UTC),
        pack=info.pack,
        opponent=plan.opponent,
        attack=plan.attack,
        attack_params=params,
        eps=eps,
        level=level,
        image_index=job.image_index,
        seed=job.seed,
        **image_columns(image),
    )
    session.add(record)
    await session.flush()
    return record


async def player_round(session: AsyncSession, *, player: PlayerRecord, round_id: str) -> RoundRecord:
    """A round as its own player sees it. Someone else's round is reported as missing, not as forbidden, so ids
    cannot be probed."""
    record = await session.get(RoundRecord, round_id)
    if record is None or record.player_id != player.id:
        raise NotFound(messages.ROUND_NOT_FOUND)
    return record


async def round_answer(session: AsyncSession, round_id: str) -> AnswerRecord | None:
    return await session.scalar(select(AnswerRecord).where(AnswerRecord.round_id == round_id))


def choice_index(choice: str, class_names: tuple[str, ...]) -> int:
    try:
        return class_names.index(choice)
    except ValueError:
        raise Invalid(messages.CHOICE_NOT_OFFERED) from None


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time this app stores is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def answer_round(
    session: AsyncSession, *, player: PlayerRecord, round_id: str, choice: str, source: ImageSource
) -> tuple[RoundRecord, AnswerRecord]:
    """Score the player's one answer. A second answer, even a simultaneous one, is a Conflict: the answers table's
    unique round_id decides the race, not this code."""
    record = await player_round(session, player=player, round_id=round_id)
    if await round_answer(session, round_id) is not None:
        raise Conflict(messages.ROUND_ALREADY_ANSWERED)
    info = source.opponent_info(record.opponent)
    chosen = choice_index(choice, info.class_names)
    now = datetime.now(UTC)
    answer = AnswerRecord(
        id=uuid.uuid4().hex,
        round_id=record.id,
        player_id=player.id,
        created_at=now,
        choice=chosen,
        correct=chosen == record.true_label,
        model_correct=record.model_label == record.true_label,
        points=0,
        response_ms=max(0, int((now - _aware(record.created_at)).total_seconds() * 1000)),
    )
    session.add(answer)
    try:
        # Inserting first takes SQLite's write lock before the player is re-read, and lets the unique
        # constraint reject a duplicate before anything else changes.
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict(messages.ROUND_ALREADY_ANSWERED) from None
    await session.refresh(player, with_for_update=True)
    score = score_answer(correct=answer.correct, model_correct=answer.model_correct, streak_before=player.streak)
    answer.points = score.points
    player.score += score.points
    player.streak = score.streak
    player.best_streak = max(player.best_streak, score.streak)
    player.level = staircase_for(info).next_level(record.level, correct=answer.correct)
    await session.flush()
    return record, answer


@dataclass(frozen=True)
class Reveal:
    """Everything the reveal shows, in display terms."""

    round_id: str
    class_names: tuple[str, ...]
    true_label: str
    player_label: str
    model_label: str
    clean_label: str
    correct: bool
    model_correct: bool
    beat_machine: bool
    model_confidence: float
    top3: tuple[tuple[str, float], ...]
    eps: float
    eps_text: str
    points: int
    response_ms: int
    opponent: str
    attack: str


def build_reveal(record: RoundRecord, answer: AnswerRecord, class_names: tuple[str, ...]) -> Reveal:
    ranked = sorted(range(len(record.model_probs)), key=lambda i: record.model_probs[i], reverse=True)[:3]
    return Reveal(
        round_id=record.id,
        class_names=class_names,
        true_label=class_names[record.true_label],
        player_label=class_names[answer.choice],
        model_label=class_names[record.model_label],
        clean_label=class_names[record.clean_label],
        correct=answer.correct,
        model_correct=answer.model_correct,
        beat_machine=answer.correct and not answer.model_correct,
        model_confidence=record.model_confidence,
        top3=tuple((class_names[i], float(record.model_probs[i])) for i in ranked),
        eps=record.eps,
        eps_text=eps_as_grey_levels(record.eps),
        points=answer.points,
        response_ms=answer.response_ms,
        opponent=record.opponent,
        attack=record.attack,
    )
