"""Rounds: what a round is, how it is created, answered once, scored and revealed. No HTTP, no torch.

The model service is passed in (anything with ``generate`` and ``opponent_info``), so these rules are tested
without a server and would run unchanged against a remote model service.
"""

from __future__ import annotations

import math
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
from app.game import conditions
from app.game.difficulty import Staircase, eps_as_grey_levels
from app.game.scoring import score_answer
from app.images import to_png
from app.ml.service.contracts import AttackCatalog, ImageJob, ImageResult, OpponentInfo


class ImageSource(Protocol):
    async def generate(self, job: ImageJob) -> ImageResult: ...

    def opponent_info(self, name: str) -> OpponentInfo: ...

    def opponent_names(self) -> list[str]: ...

    def attack_catalog(self) -> AttackCatalog: ...


# What a round asks of each attack beyond its library defaults: query budgets bounded so that one image costs
# about a second of one CPU core at most (benchmarks/RESULTS.md, "Round attacks"), since slow attacks share the model
# worker with everyone else's rounds; and a margin past the decision boundary for the attacks that stop right on it,
# so that rounding the image to whole grey levels does not undo them. PGD's steps come from ARENA_ATTACK_STEPS.
ROUND_ATTACK_PARAMS: dict[str, dict[str, Any]] = {
    "cw": {"steps": 60, "binary_search_steps": 3, "confidence": 1.0},
    "deepfool": {"overshoot": 0.2},
    "deepfool-linf": {"overshoot": 0.2},
    "square": {"max_queries": 500},
    "nes": {"max_queries": 500},
    "hopskipjump": {"max_queries": 500},
    "genattack": {"max_queries": 500},
    "one-pixel": {"max_queries": 500, "pixels": 3},
    "evadehc": {"max_queries": 500},
}

# The attack a round falls back to against an opponent without gradients, when the chosen default is white-box.
GRADIENT_FREE_DEFAULTS = ("transfer", "square")


@dataclass(frozen=True)
class RoundPlan:
    """Which opponent, attack and parameters a new round uses: chosen by settings, by the player, or by an event."""

    opponent: str
    attack: str = "pgd"
    steps: int = 20
    condition: str = "adversarial"  # app/game/conditions.py
    surrogate: str | None = None  # transfer rounds: the model the attack is crafted on
    # parameters that replace the round defaults: a defended opponent's card names its adaptive attack's
    overrides: tuple[tuple[str, Any], ...] = ()

    def with_condition(self, condition: str, surrogate: str | None = None) -> RoundPlan:
        """The plan under a science-mode condition. A transfer round swaps the attack for the transfer attack,
        crafted on ``surrogate`` with this plan's PGD steps."""
        attack = "transfer" if condition == "transfer" else self.attack
        if condition == "transfer":
            return RoundPlan(self.opponent, attack, self.steps, condition, surrogate)
        return RoundPlan(self.opponent, attack, self.steps, condition, self.surrogate, self.overrides)

    def attack_params(self) -> dict[str, Any]:
        # PGD's iterations and random start are the game's choice; other attacks get the bounded round budgets.
        if self.overrides:
            return dict(self.overrides)
        if self.attack == "pgd":
            return {"steps": self.steps, "random_start": True}
        if self.attack == "transfer":
            return {"steps": self.steps, **({"surrogate": self.surrogate} if self.surrogate else {})}
        return dict(ROUND_ATTACK_PARAMS.get(self.attack, {}))


TASKS = ("classify", "guess_machine")


def draw_task(guess_share: float) -> str:
    """guess_machine with probability ``guess_share``, else classify."""
    return "guess_machine" if secrets.randbelow(1_000_000) < guess_share * 1_000_000 else "classify"


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


def playable_in_rounds(attack: Mapping[str, Any], info: OpponentInfo | None = None) -> bool:
    """Every attack can play a round; against an opponent without gradients only those that never ask for them
    (score, decision, transfer)."""
    if info is not None and not info.differentiable:
        return attack["threat_model"] != "white-box"
    return True


def playable_attacks(source: ImageSource, info: OpponentInfo) -> list[str]:
    return [attack["name"] for attack in source.attack_catalog() if playable_in_rounds(attack, info)]


def choose_plan(
    source: ImageSource,
    *,
    default: RoundPlan,
    opponent: str | None = None,
    attack: str | None = None,
    mix: Mapping[str, float] | None = None,
) -> RoundPlan:
    """The plan for a round the player asked for: their opponent and attack, or the defaults, under a condition
    drawn from ``mix`` (science mode; plain play is adversarial only). Unknown or impossible choices are refused
    with the valid ones listed."""
    offered = source.opponent_names()
    name = opponent or default.opponent
    if name not in offered:
        raise Invalid(messages.ROUND_OPPONENT_UNKNOWN.format(name=name, valid=", ".join(offered)))
    info = source.opponent_info(name)
    valid = playable_attacks(source, info)
    chosen = attack
    adaptive = info.card.get("adaptive_attack") if isinstance(info.card, Mapping) else None
    if chosen is None and isinstance(adaptive, Mapping) and adaptive.get("attack") in valid:
        # A defended opponent is attacked by the attack that adapts to its defense (its card says which), so the
        # game never shows a defense as stronger than it is.
        overrides = ImageJob.freeze_params(adaptive.get("params") or {})
        plan = RoundPlan(opponent=name, attack=str(adaptive["attack"]), steps=default.steps, overrides=overrides)
        return condition_plan(source, plan, mix)
    if chosen is None:
        fallbacks = (default.attack, *GRADIENT_FREE_DEFAULTS)
        chosen = next((candidate for candidate in fallbacks if candidate in valid), valid[0] if valid else "")
    if chosen not in valid:
        raise Invalid(messages.ROUND_ATTACK_UNKNOWN.format(name=chosen, opponent=name, valid=", ".join(valid)))
    # A transfer round must be crafted on another model, or it would be white-box against this one.
    surrogate = transfer_surrogate(source, name) if chosen == "transfer" else None
    if chosen == "transfer" and surrogate is None:
        raise Invalid(messages.ROUND_NO_SURROGATE.format(opponent=name))
    plan = RoundPlan(opponent=name, attack=chosen, steps=default.steps, surrogate=surrogate)
    return condition_plan(source, plan, mix)


def condition_plan(source: ImageSource, plan: RoundPlan, mix: Mapping[str, float] | None) -> RoundPlan:
    """Draw the round's condition from the mix. A transfer draw needs the transfer attack; a server without it
    plays the round adversarial rather than fail."""
    condition = conditions.draw(mix) if mix else "adversarial"
    surrogate = None
    if condition == "transfer":
        surrogate = transfer_surrogate(source, plan.opponent)
        if surrogate is None or "transfer" not in {a["name"] for a in source.attack_catalog()}:
            condition = "adversarial"
    return plan.with_condition(condition, surrogate) if condition != plan.condition else plan


def transfer_surrogate(source: ImageSource, opponent: str) -> str | None:
    """Another loaded model with gradients on the same data pack, to craft a transfer round on."""
    pack = source.opponent_info(opponent).pack
    for name in source.opponent_names():
        info = source.opponent_info(name)
        if name != opponent and info.differentiable and info.pack == pack:
            return name
    return None


def attack_entry(source: ImageSource, name: str) -> Mapping[str, Any]:
    for attack in source.attack_catalog():
        if attack["name"] == name:
            return attack
    return {"name": name, "norm": "linf", "threat_model": "white-box", "explanation": "", "params": []}


def round_budget(norm: str, eps: float, info: OpponentInfo) -> float:
    """The attack's budget for a staircase step. The staircase speaks L∞ (grey levels per pixel); an L2 attack gets
    the L2 size of an L∞ change of eps on a quarter of the pixels (eps·√(pixels)/2, e.g. 1.41 for 0.1 on 28×28),
    and an L0 attack may change its few pixels all the way (eps 1)."""
    if norm == "l2":
        return round(eps * math.sqrt(max(info.pixel_count, 1)) / 2, 4)
    if norm == "l0":
        return 1.0
    return eps


def budget_text(norm: str, eps: float, params: Mapping[str, Any]) -> str:
    """The budget in words people can picture."""
    if norm == "l2":
        return f"L2 size {eps:.2f}"
    if norm == "l0":
        pixels = params.get("pixels")
        return f"{pixels} pixels" if pixels else "a few pixels"
    return eps_as_grey_levels(eps)


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
        condition=plan.condition,
    )


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


def plan_columns(plan: RoundPlan, attack: Mapping[str, Any], eps: float) -> dict[str, Any]:
    """The columns that say how a round (or shared image) was made: opponent, attack, its parameters and budget."""
    params = plan.attack_params()
    surrogate = params.get("surrogate")
    if attack["threat_model"] == "transfer" and surrogate is None:
        surrogate = next((p["default"] for p in attack.get("params", []) if p["name"] == "surrogate"), None)
    return {
        "opponent": plan.opponent,
        "attack": plan.attack,
        "attack_params": params,
        "eps": eps,
        "norm": attack["norm"],
        "surrogate": surrogate,
        "condition": plan.condition,
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
) -> RoundRecord:
    """Pick a test image the opponent gets right when clean, attack it at the player's level (or at the given
    L∞ eps, as events do; attacks in other norms get the matching budget), store the round.

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
    # The attack takes a while when the room is busy: give the database connection back to the pool meanwhile
    # (nothing has been written yet), so that a hundred waiting players do not starve everyone else of
    # connections. The rollback expires loaded objects, so the player is read again afterwards.
    release = release_connection and not (session.new or session.dirty or session.deleted)
    if release:
        await session.rollback()
    image = await source.generate(job)
    if release:
        await session.refresh(player)
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
    norm: str = "linf"
    threat_model: str = "white-box"
    attack_explanation: str = ""
    queries: int | None = None
    query_budget: int | None = None
    surrogate: str | None = None
    l2: float | None = None
    linf: float = 0.0
    condition: str = "adversarial"
    condition_text: str = ""
    task: str = "classify"
    defense_verdict: str | None = None
    defense_text: str = ""
    certified_radius: float | None = None


def build_reveal(
    record: RoundRecord, answer: AnswerRecord, class_names: tuple[str, ...], attack: Mapping[str, Any] | None = None
) -> Reveal:
    """``attack`` is the attack's catalogue entry (threat model, explanation), when the caller has it."""
    ranked = sorted(range(len(record.model_probs)), key=lambda i: record.model_probs[i], reverse=True)[:3]
    attack = attack or {}
    return Reveal(
        round_id=record.id,
        class_names=class_names,
        true_label=class_names[record.true_label],
        player_label=class_names[answer.choice],
        model_label=class_names[record.model_label],
        clean_label=class_names[record.clean_label],
        correct=answer.correct,
        model_correct=answer.model_correct,
        beat_machine=answer.correct and not answer.model_correct and record.task != "guess_machine",
        model_confidence=record.model_confidence,
        top3=tuple((class_names[i], float(record.model_probs[i])) for i in ranked),
        eps=record.eps,
        eps_text=budget_text(record.norm or "linf", record.eps, record.attack_params or {}),
        points=answer.points,
        response_ms=answer.response_ms,
        opponent=record.opponent,
        attack=record.attack,
        norm=record.norm or "linf",
        threat_model=str(attack.get("threat_model", "white-box")),
        attack_explanation=str(attack.get("explanation", "")),
        queries=record.queries,
        query_budget=record.query_budget,
        surrogate=record.surrogate,
        l2=record.l2,
        linf=record.linf,
        condition=record.condition or "adversarial",
        condition_text=conditions.DESCRIPTIONS.get(record.condition or "adversarial", ""),
        task=record.task or "classify",
        defense_verdict=record.defense_verdict,
        defense_text=defense_text(record.defense_verdict, record.certified_radius, record.linf),
        certified_radius=record.certified_radius,
    )


# What each defense verdict (app/ml/defenses/outcome.py) means, said to the player after the answer.
DEFENSE_TEXTS = {
    "rejected": "The defense's detector flagged this image as adversarial: a deployed system would have refused "
    "it, whatever the network answered.",
    "reformed": "The defense cleaned the image up before the network saw it, and that saved it: the network alone "
    "would have been fooled by this image.",
    "certified": "Certified: the model proves that no change of at most {radius}/255 per pixel can fool it on this "
    "image, and this one changed pixels by at most {linf}/255.",
    "withstood": "The defense held: the attack did not fool it.",
    "fooled": "The attack got through the defense.",
}


def defense_text(verdict: str | None, radius: float | None, linf: float) -> str:
    """The reveal's sentence for a defense verdict, with a certified model's radius next to the change used."""
    if verdict is None:
        return ""
    text = DEFENSE_TEXTS.get(verdict, f"Defense verdict: {verdict}.")
    if verdict == "certified":
        text = text.format(radius=f"{(radius or 0) * 255:.1f}", linf=f"{linf * 255:.0f}")
    elif radius is not None:
        text += (
            f" Its certified radius on this image was {radius * 255:.1f}/255 per pixel; the change used "
            f"{linf * 255:.0f}/255, beyond what it can prove."
        )
    return text
