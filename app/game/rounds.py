"""Rounds: how a round is created, stored, answered once and scored. No HTTP, no torch.

The model service is passed in (anything with ``generate`` and ``opponent_info``), so these rules are tested
without a server and would run unchanged against a remote model service. What a round will be is chosen in
app/game/plan.py; what the player is shown afterwards is built in app/game/reveal.py; app/game/play.py runs a
request's whole round, transaction included.
"""

from __future__ import annotations

import dataclasses
import statistics
from asyncio import sleep
from collections import deque
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from time import monotonic
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.queries import pending_round, round_answer
from app.db.session import connection_released
from app.db.tables import AnswerRecord, PlayerRecord, RoundRecord, new_id
from app.errors import Conflict, Invalid, NotFound
from app.game import stock
from app.game.catalogue import ImageSource, RoundSource, attack_entry, playable_attacks, playable_in_rounds
from app.game.plan import RoundPlan, condition_plan, draw_task, new_job, plan_columns, round_budget, staircase_for
from app.game.reveal import build_reveal
from app.game.scoring import score_answer
from app.images import to_png
from app.ml.service.contracts import ImageJob, ImageResult

# The events game (app/game/events) reaches the plan and reveal rules through this module, as ``rounds.X``.
__all__ = [
    "ImageSource",
    "RoundPlan",
    "RoundSource",
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
    "start_stocked_round",
    "store_pending",
    "timing_flag",
]


def pick_foil(true_label: int, machine_label: int, probs: Sequence[float]) -> int:
    """The other label of a guess-the-machine round, offered beside the machine's answer. The pair always holds the
    truth, fooled or not: when the machine was fooled the foil is the truth; when it was not, the foil is the
    machine's runner-up (its most probable other label, where an attack would have pushed it). So which labels are
    offered never says whether the machine was fooled: every pair is the truth and a plausible wrong label, and the
    player has to judge whether the image fooled the machine (chance is 50% on every round)."""
    if machine_label != true_label:
        return true_label
    return max((label for label in range(len(probs)) if label != machine_label), key=lambda label: probs[label])


def offered_choices(record: RoundRecord, class_names: tuple[str, ...]) -> list[tuple[int, str]]:
    """(index, name) of the labels a round offers: every class, or for a guess round the machine's answer and the
    foil in class order (so the position says nothing)."""
    if record.task == "guess_machine" and record.foil is not None:
        pair = sorted((record.model_label, record.foil))
        return [(index, class_names[index]) for index in pair]
    return list(enumerate(class_names))


def new_round_id() -> str:
    return new_id()


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
        "steps_run": image.steps,
        "image_index": image.image_index,
        "seed": image.seed,
        "defense_verdict": image.defense_verdict,
        "certified_radius": image.certified_radius,
        "clean_png": to_png(image.clean),
        "adversarial_png": to_png(image.adversarial),
        # an image, not a text (text rounds: app/game/text.py text_columns)
        "kind": "image",
        "original_text": None,
        "shown_text": None,
        "changed_words": None,
        "n_words": None,
        "similarity": None,
    }


def attack_spent(image: ImageResult) -> tuple[int | None, int | None]:
    """What the attack spent on the image and was allowed: model queries for a black-box attack, else gradient steps
    for an iterative one that may stop early (PGD with ``stop_on_shown``); (None, None) when it counts neither."""
    if image.queries is not None:
        return image.queries, image.query_budget
    return image.steps, image.step_budget


class ReplyPacing:
    """How long each attack that may stop early takes at its full budget (a black-box attack's queries, or the
    gradient steps of PGD stopping once the shown image fools), learnt per opponent, attack and parameters, so
    that a round whose attack stopped early can be handed back no sooner than one whose attack did not: the median
    time of the last few rounds that spent the budget; until there is one, a straight line through the recent
    rounds' (queries, time), which counts the attack's set-up once instead of in every query."""

    def __init__(self, remembered: int = 9) -> None:
        self.remembered = remembered
        self._full_budget_s: dict[tuple[str, str, tuple[tuple[str, Any], ...]], deque[float]] = {}
        self._recent: dict[tuple[str, str, tuple[tuple[str, Any], ...]], deque[tuple[int, float]]] = {}

    def reply_s(self, job: ImageJob, image: ImageResult, elapsed_s: float) -> float:
        """How long the reply to this job should take, given that the model service took ``elapsed_s``."""
        spent, budget = attack_spent(image)
        if image.made_ahead or spent is None or not budget:
            # made ahead: no attack time to hide; an attack that runs its fixed steps whatever happens: none either
            return elapsed_s
        key = (job.opponent, job.attack, job.params)
        held = self._full_budget_s.setdefault(key, deque(maxlen=self.remembered))
        recent = self._recent.setdefault(key, deque(maxlen=self.remembered))
        if spent >= budget:
            held.append(elapsed_s)
            return elapsed_s
        recent.append((spent, elapsed_s))
        if held:
            return max(elapsed_s, statistics.median(held))
        if len({queries for queries, _ in recent}) >= 2:
            slope, intercept = statistics.linear_regression(*zip(*recent, strict=True))
            return max(elapsed_s, intercept + slope * budget)
        # one round seen: its time per query (or step) times the whole budget
        return elapsed_s / max(spent, 1) * budget


PACING = ReplyPacing()


async def generate_evenly(source: ImageSource, job: ImageJob) -> ImageResult:
    """The model service's result, handed back no sooner than the attack takes at its full query budget.

    A black-box attack stops at its first fooling query, so without the wait a quick reply would tell the player that
    the machine was fooled before they have looked. The wait holds no model worker, and no database connection when
    the caller released it. A result made ahead of time (``made_ahead``, the ready-round pool) comes back at once,
    fooled or not."""
    started = monotonic()
    image = await source.generate(job)
    elapsed_s = monotonic() - started
    await sleep(max(0.0, PACING.reply_s(job, image, elapsed_s) - elapsed_s))
    return image


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
    client_key: str = "",
) -> RoundRecord:
    """Pick a test image the opponent gets right when clean, attack it at the player's level (or at the given
    L∞ eps, as events do; attacks in other norms get the matching budget), store the round as the player's one
    pending round. Two requests racing for it both attack, but the unique pending_player_id lets one store: the
    other's transaction is rolled back and it hands back the winner's round. ``stocked=True`` first claims an image
    made ahead of time with the same settings (app/game/stock.py), if there is one.

    ``release_connection=True`` promises that the session has written nothing yet in this transaction (a request
    that only read the player): the connection then goes back to the pool while the attack runs.

    ``client_key`` (opaque here: the routes pass the client's address) groups the players whose rounds share one
    fair share of the model worker, so that one address that made many players gets one share; "" gives the player a
    share of their own. Admission and the one-pending-round rule stay per player."""
    info = source.opponent_info(plan.opponent)
    attack = attack_entry(source, plan.attack)
    staircase = staircase_for(info)
    level = staircase.clamp(player.level)
    if eps is None:
        eps = staircase.eps(level)
    budget = round_budget(attack["norm"], eps, info)
    # The model service budgets its compute per player and takes turns per client key (issue 16).
    job = dataclasses.replace(new_job(plan, info, budget), client=player.id, share=client_key)
    columns = await stock.claim(session, job) if stocked else None
    if columns is None:
        # A claim that found nothing wrote nothing: the connection may still be released.
        async with connection_released(session, player) if release_connection else nullcontext():
            image = await generate_evenly(source, job)
        columns = image_columns(image)
    columns = {**columns, **plan_columns(plan, attack, budget), "pack": info.pack, "flash_ms": flash_ms}
    record = _pending_record(player, columns, level=level, event_id=event_id, phase=phase, task=task)
    return await store_pending(session, player=player, record=record)


async def start_stocked_round(
    session: AsyncSession,
    *,
    player: PlayerRecord,
    source: ImageSource,
    image: dict[str, Any],
    event_id: str,
    phase: int,
    flash_ms: int | None = None,
    task: str = "classify",
) -> RoundRecord:
    """Store the player's pending round showing ``image``, every AttackedImage column of a stock image already
    claimed in this transaction (app/game/stock.claim_for_event): how it was made (opponent, attack, condition,
    budget) is the image's. The pending-round race is ``start_round``'s: the loser's claim is rolled back."""
    level = staircase_for(source.opponent_info(image["opponent"])).clamp(player.level)
    columns = {**image, "flash_ms": flash_ms}
    record = _pending_record(player, columns, level=level, event_id=event_id, phase=phase, task=task)
    return await store_pending(session, player=player, record=record)


def _pending_record(
    player: PlayerRecord, columns: dict[str, Any], *, level: int, event_id: str | None, phase: int | None, task: str
) -> RoundRecord:
    foil = None
    if task == "guess_machine":
        foil = pick_foil(columns["true_label"], columns["model_label"], columns["model_probs"])
    return RoundRecord(
        id=new_round_id(),
        player_id=player.id,
        event_id=event_id,
        phase=phase,
        created_at=datetime.now(UTC),
        level=level,
        task=task,
        foil=foil,
        pending_player_id=player.id,
        **columns,
    )


async def store_pending(session: AsyncSession, *, player: PlayerRecord, record: RoundRecord) -> RoundRecord:
    """Store ``record`` as the player's one pending round; when another request stored theirs first (the unique
    pending_player_id decides), roll back and hand back the winner's round."""
    session.add(record)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        await session.refresh(player)
        winner = await pending_round(session, player.id)
        if winner is None:  # not the pending-round race: some other constraint refused the round
            raise
        return winner
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
        id=new_id(),
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
    record.pending_player_id = None
    player.score += score.points
    player.streak = score.streak
    player.best_streak = max(player.best_streak, score.streak)
    if not guessing:
        player.level = staircase_for(info).next_level(record.level, correct=answer.correct)
    await session.flush()
    return record, answer
