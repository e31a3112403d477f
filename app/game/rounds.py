"""Rounds: how a round is created, stored, answered once and scored. No HTTP, no torch.

The model service is passed in (anything with ``generate`` and ``opponent_info``), so these rules are tested
without a server and would run unchanged against a remote model service. What a round will be is chosen in
app/game/plan.py; what the player is shown afterwards is built in app/game/reveal.py; app/game/play.py runs a
request's whole round, transaction included.
"""

from __future__ import annotations

import secrets
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.queries import round_answer
from app.db.session import connection_released
from app.db.tables import AnswerRecord, PlayerRecord, RoundRecord
from app.errors import Conflict, Invalid, NotFound
from app.game import stock
from app.game.catalogue import ImageSource, attack_entry, playable_attacks, playable_in_rounds
from app.game.plan import RoundPlan, condition_plan, draw_task, new_job, plan_columns, round_budget, staircase_for
from app.game.reveal import build_reveal
from app.game.scoring import score_answer
from app.images import to_png
from app.ml.service.contracts import ImageResult

# The events game (app/game/events) reaches the plan and reveal rules through this module, as ``rounds.X``.
__all__ = [
    "ImageSource",
    "RoundPlan",
    "answer_round",
    "attack_entry",
    "build_reveal",
    "choice_index",
    "condition_plan",
    "draw_task",
    "image_columns",
    "new_job",
    "new_round_id",
    "offered_choices",
    "pick_foil",
    "plan_columns",
    "playable_attacks",
    "playable_in_rounds",
    "player_round",
    "round_answer",
    "round_budget",
    "staircase_for",
    "start_round",
    "timing_flag",
]


def pick_foil(true_label: int, machine_label: int, classes: int) -> int:
    """The other label of a guess-the-machine round: neither the machine's answer nor the truth, so that the guess
    cannot be made by spotting which label fits the picture."""
    others = [label for label in range(classes) if label not in (true_label, machine_label)]
    return secrets.choice(others)


def offered_choices(record: RoundRecord, class_names: tuple[str, ...]) -> list[tuple[int, str]]:
    """(index, name) of the labels a round offers: every class, or for a guess round the machine's answer and the
    foil in class order (so the position says nothing)."""
    if record.task == "guess_machine" and record.foil is not None:
        pair = sorted((record.model_label, record.foil))
        return [(index, class_names[index]) for index in pair]
    return list(enumerate(class_names))


def new_round_id() -> str:
    # 128 random bits, URL-safe: a round id cannot be guessed or enumerated.
    return secrets.token_urlsafe(16)


def image_columns(image: ImageResult) -> dict[str, Any]:
    """The columns a round (or a shared image) stores from the model service's result. The image index and seed
    are the result's: a result made ahead of time carries its own."""
    return {
        "true_label": image.true_label,
        "clean_label": image.clean_label,
        "clean_confidence": image.clean_confidence,
        "model_label": image.adversarial_label,
        "model_confidence": image.adversarial_probs[image.adversarial_label],
        "model_probs": list(image.adversarial_probs),
        "linf": image.linf,
        "l2": image.l2,
        "queries": image.queries,
        "query_budget": image.query_budget,
        "image_index": image.image_index,
        "seed": image.seed,
        "defense_verdict": image.defense_verdict,
        "certified_radius": image.certified_radius,
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
    flash_ms: int | None = None,
    task: str = "classify",
    stocked: bool = False,
) -> RoundRecord:
    """Pick a test image the opponent gets right when clean, attack it at the player's level (or at the given
    L∞ eps, as events do; attacks in other norms get the matching budget), store the round. ``stocked=True``
    first claims an image made ahead of time with the same settings (app/game/stock.py), if there is one.

    ``release_connection=True`` promises that the session has written nothing yet in this transaction (a request
    that only read the player): the connection then goes back to the pool while the attack runs."""
    info = source.opponent_info(plan.opponent)
    attack = attack_entry(source, plan.attack)
    staircase = staircase_for(info)
    level = staircase.clamp(player.level)
    if eps is None:
        eps = staircase.eps(level)
    budget = round_budget(attack["norm"], eps, info)
    job = new_job(plan, info, budget)
    columns = await stock.claim(session, job) if stocked else None
    if columns is None:
        # A claim that found nothing wrote nothing: the connection may still be released.
        async with connection_released(session, player) if release_connection else nullcontext():
            image = await source.generate(job)
        columns = image_columns(image)
    foil = None
    if task == "guess_machine":
        foil = pick_foil(columns["true_label"], columns["model_label"], len(info.class_names))
    record = RoundRecord(
        id=new_round_id(),
        player_id=player.id,
        event_id=event_id,
        phase=phase,
        created_at=datetime.now(UTC),
        pack=info.pack,
        level=level,
        flash_ms=flash_ms,
        task=task,
        foil=foil,
        **plan_columns(plan, attack, budget),
        **columns,
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


def choice_index(choice: str, class_names: tuple[str, ...]) -> int:
    try:
        return class_names.index(choice)
    except ValueError:
        raise Invalid(messages.CHOICE_NOT_OFFERED) from None


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time this app stores is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# One frame at 60 Hz: a flash whose measured time misses the intended one by more is flagged.
FRAME_MS = 1000 / 60
MAX_SHOWN_MS = 600_000.0


def timing_flag(flash_ms: int | None, shown_ms: float | None) -> bool | None:
    """None for rounds without a flash; otherwise True when the browser's measured on-screen time is missing or off
    by more than a frame (the answer is kept, flagged, so an analysis can drop or keep it)."""
    if flash_ms is None:
        return None
    return shown_ms is None or abs(shown_ms - flash_ms) > FRAME_MS


async def answer_round(
    session: AsyncSession,
    *,
    player: PlayerRecord,
    round_id: str,
    choice: str,
    source: ImageSource,
    shown_ms: float | None = None,
) -> tuple[RoundRecord, AnswerRecord]:
    """Score the player's one answer. A second answer, even a simultaneous one, is a Conflict: the answers table's
    unique round_id decides the race, not this code. ``shown_ms`` is the flash time the browser measured."""
    record = await player_round(session, player=player, round_id=round_id)
    if await round_answer(session, round_id) is not None:
        raise Conflict(messages.ROUND_ALREADY_ANSWERED)
    info = source.opponent_info(record.opponent)
    chosen = choice_index(choice, info.class_names)
    guessing = record.task == "guess_machine"
    if chosen not in {index for index, _ in offered_choices(record, info.class_names)}:
        raise Invalid(messages.CHOICE_NOT_OFFERED)
    if shown_ms is not None and not 0 <= shown_ms <= MAX_SHOWN_MS:
        raise Invalid(messages.SHOWN_MS_INVALID)
    now = datetime.now(UTC)
    answer = AnswerRecord(
        id=uuid.uuid4().hex,
        round_id=record.id,
        player_id=player.id,
        created_at=now,
        choice=chosen,
        # a guess is right when it names the machine's answer; everywhere else, when it names the truth
        correct=chosen == (record.model_label if guessing else record.true_label),
        model_correct=record.model_label == record.true_label,
        points=0,
        response_ms=max(0, int((now - _aware(record.created_at)).total_seconds() * 1000)),
        shown_ms=shown_ms if record.flash_ms is not None else None,
        timing_flagged=timing_flag(record.flash_ms, shown_ms),
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
    # A guess earns the plain points of a right answer (no beat-the-machine bonus: it is about the machine) and
    # leaves the staircase alone, which measures seeing, not guessing.
    score = score_answer(
        correct=answer.correct, model_correct=answer.model_correct or guessing, streak_before=player.streak
    )
    answer.points = score.points
    player.score += score.points
    player.streak = score.streak
    player.best_streak = max(player.best_streak, score.streak)
    if not guessing:
        player.level = staircase_for(info).next_level(record.level, correct=answer.correct)
    await session.flush()
    return record, answer
