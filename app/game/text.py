"""Text rounds (issue #18, "read and classify"): the rules, no HTTP, no torch.

A text round shows a WordNet definition of the definitions pack; the player says what kind of thing it defines. It is
stored as a RoundRecord of kind "text" (app/db/tables.py): the same answers table, the same one-answer and reveal
rules, the same leaderboard and statistics as image rounds. Its budget (``eps``) is the share of the definition's
words the attack may change, its norm is "words", and ``linf`` is the share that did change.

* Staircase: on the share of words, one step up (more words changed) after a right answer, one down after a wrong
  one, over :data:`TEXT_LEVELS`. A player's text step is kept on their last text round, apart from the image
  staircase (``player.level``), so playing one kind never moves the other.
* Conditions: adversarial (the attack on the opponent), clean (the definition as written) and random_swap (as many
  random WordNet synonym swaps as the budget allows, the same count as an attack could make: is it the attack or any
  change this size?). The image game's mixes read across: noise and flipped are its same-size controls, so they
  become random_swap here, and transfer becomes the transfer attack (crafted on the other text opponent).
* Events with the text pack play the same rounds: own pace draws the budget from :data:`EVENT_LEVELS`, a together
  image cycles through them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.queries import pending_round, round_answer
from app.db.session import connection_released
from app.db.tables import AnswerRecord, EventRecord, PlayerRecord, RoundRecord, SharedRoundRecord, new_id
from app.errors import Conflict, Invalid, ServiceUnavailable
from app.game import conditions
from app.game.catalogue import TextSource
from app.game.difficulty import Staircase
from app.game.scoring import score_answer
from app.ml.packs.text.definitions import CATEGORIES
from app.ml.service.text_contracts import TEXT_ATTACKS, TextJob, TextOpponentInfo, TextResult

TEXT_PACK = "definitions"
TEXT_PACKS = (TEXT_PACK,)
# The pack's categories as players see them (the text opponents' class names, in their order).
TEXT_CLASS_NAMES: tuple[str, ...] = tuple(name for _, name in CATEGORIES)
TEXT_KIND = "text"
TEXT_NORM = "words"
DEFAULT_TEXT_ATTACK = "textfooler"
# Shares of words an attack may change, lowest first: 10% is one word of a ten-word definition.
TEXT_LEVELS: tuple[float, ...] = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
EVENT_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3)
TEXT_STAIRCASE = Staircase(TEXT_LEVELS)
TEXT_CONDITIONS = ("adversarial", "clean", "random_swap")
# The image game's conditions (app/game/conditions.py) as text rounds play them.
FROM_IMAGE_CONDITION = {
    "adversarial": "adversarial",
    "clean": "clean",
    "noise": "random_swap",
    "flipped": "random_swap",
    "transfer": "adversarial",
}
CONDITION_TEXT = {
    "adversarial": "attacked: words were swapped to fool the machine",
    "clean": "a control: this definition was not changed at all",
    "random_swap": "a control: as many words swapped for random synonyms, not chosen to fool anyone",
}


def is_text_pack(pack: str | None) -> bool:
    return pack in TEXT_PACKS


def is_text(record: Any) -> bool:
    return getattr(record, "kind", "image") == TEXT_KIND


async def text_opponent(source: TextSource, name: str | None = None) -> TextOpponentInfo:
    """The named text opponent, or the service's default (its first); refused with the valid names listed."""
    infos = await source.text_opponents()
    if not infos:
        raise ServiceUnavailable(messages.TEXT_UNAVAILABLE)
    if name is None:
        return infos[0]
    for info in infos:
        if info.name == name:
            return info
    raise Invalid(messages.ROUND_OPPONENT_UNKNOWN.format(name=name, valid=", ".join(i.name for i in infos)))


def check_attack(attack: str | None) -> str:
    chosen = attack or DEFAULT_TEXT_ATTACK
    if chosen not in TEXT_ATTACKS:
        raise Invalid(messages.TEXT_ATTACK_UNKNOWN.format(name=chosen, valid=", ".join(TEXT_ATTACKS)))
    return chosen


def text_plan(attack: str, mix: Mapping[str, float] | None) -> tuple[str, str]:
    """(attack, condition) of a round drawn under an image-game mix (see the module docstring)."""
    drawn = conditions.draw(mix) if mix else "adversarial"
    return ("transfer" if drawn == "transfer" else attack), FROM_IMAGE_CONDITION[drawn]


def text_columns(result: TextResult) -> dict[str, Any]:
    """The columns a text round (or a room's shared text) stores from the model service's result."""
    return {
        "kind": TEXT_KIND,
        "opponent": result.opponent,
        "attack": result.attack,
        "attack_params": {},
        "eps": result.budget,
        "norm": TEXT_NORM,
        "condition": result.condition,
        "surrogate": result.surrogate,
        "image_index": result.text_index,
        "seed": result.seed,
        "true_label": result.true_label,
        "clean_label": result.clean_answer,
        "clean_confidence": result.clean_confidence,
        "model_label": result.answer,
        "model_confidence": result.confidence,
        "model_probs": list(result.probabilities),
        "linf": result.share_changed,
        "l2": None,
        "queries": result.queries,
        "query_budget": None,
        "defense_verdict": None,
        "certified_radius": None,
        "clean_png": b"",
        "adversarial_png": b"",
        "original_text": result.original,
        "shown_text": result.shown,
        "changed_words": list(result.changed),
        "n_words": result.n_words,
        "similarity": result.similarity,
    }


async def make_text(
    source: TextSource,
    *,
    opponent: str,
    attack: str,
    budget: float,
    condition: str,
    client: str = "",
    share: str = "",
) -> TextResult:
    seed = secrets.randbits(31)
    job = TextJob(opponent, attack, budget, seed=seed, condition=condition, client=client, share=share)
    return await source.text(job)


async def text_level(session: AsyncSession, player_id: str) -> int:
    """The player's next text step: one up from their last answered text round if they got it right, else down."""
    row = (
        await session.execute(
            select(RoundRecord.level, AnswerRecord.correct)
            .join(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
            .where(RoundRecord.player_id == player_id, RoundRecord.kind == TEXT_KIND, RoundRecord.task == "classify")
            .order_by(AnswerRecord.created_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return 0
    return TEXT_STAIRCASE.next_level(int(row[0]), correct=bool(row[1]))


async def start_text_round(
    session: AsyncSession,
    *,
    player: PlayerRecord,
    source: TextSource,
    opponent: str | None = None,
    attack: str | None = None,
    mix: Mapping[str, float] | None = None,
    budget: float | None = None,
    event_id: str | None = None,
    phase: int | None = None,
    release_connection: bool = False,
    client_key: str = "",
) -> RoundRecord:
    """A text round at the player's step (or at ``budget``, as events choose), stored as their one pending round.
    Two racing requests both ask the model service; the unique pending_player_id keeps one (as image rounds do).
    ``client_key`` (opaque here, as in rounds.start_round): whose fair share of the model worker the text takes."""
    info = await text_opponent(source, opponent)
    chosen, condition = text_plan(check_attack(attack), mix)
    level = await text_level(session, player.id) if budget is None else 0
    if budget is None:
        budget = TEXT_STAIRCASE.eps(level)
    client = player.id  # read before the connection goes: releasing it expires the player until it is reloaded
    async with connection_released(session, player) if release_connection else nullcontext():
        result = await make_text(
            source,
            opponent=info.name,
            attack=chosen,
            budget=budget,
            condition=condition,
            client=client,
            share=client_key,
        )
    record = RoundRecord(
        id=new_id(),
        player_id=player.id,
        event_id=event_id,
        phase=phase,
        created_at=datetime.now(UTC),
        pack=info.pack,
        level=level,
        task="classify",
        pending_player_id=player.id,
        **text_columns(result),
    )
    session.add(record)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        await session.refresh(player)
        winner = await pending_round(session, player.id)
        if winner is None:
            raise
        return winner
    return record


def choice_index(choice: str, class_names: Sequence[str]) -> int:
    try:
        return list(class_names).index(choice)
    except ValueError:
        raise Invalid(messages.CHOICE_NOT_OFFERED) from None


async def answer_text_round(
    session: AsyncSession, *, player: PlayerRecord, record: RoundRecord, choice: str, source: TextSource
) -> AnswerRecord:
    """Score the player's one answer to a text round (the answers table's unique round_id decides a race). The text
    staircase moves with it; the image staircase (``player.level``) does not."""
    if await round_answer(session, record.id) is not None:
        raise Conflict(messages.ROUND_ALREADY_ANSWERED)
    info = await text_opponent(source, record.opponent)
    chosen = choice_index(choice, info.class_names)
    now = datetime.now(UTC)
    created = record.created_at if record.created_at.tzinfo is not None else record.created_at.replace(tzinfo=UTC)
    answer = AnswerRecord(
        id=new_id(),
        round_id=record.id,
        player_id=player.id,
        created_at=now,
        choice=chosen,
        correct=chosen == record.true_label,
        model_correct=record.model_label == record.true_label,
        points=0,
        response_ms=max(0, int((now - created).total_seconds() * 1000)),
    )
    session.add(answer)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict(messages.ROUND_ALREADY_ANSWERED) from None
    await session.refresh(player, with_for_update=True)
    score = score_answer(correct=answer.correct, model_correct=answer.model_correct, streak_before=player.streak)
    answer.points = score.points
    record.pending_player_id = None
    player.score += score.points
    player.streak = score.streak
    player.best_streak = max(player.best_streak, score.streak)
    await session.flush()
    return answer


async def open_shared_text(
    session: AsyncSession,
    *,
    event: EventRecord,
    source: TextSource,
    opponent: str,
    attack: str,
    mix: Mapping[str, float] | None,
    round_seconds: int,
) -> SharedRoundRecord:
    """A together event's next text: made ONCE for the room, copied to each player who asks (the caller checked
    the event's state, as app/game/events/together.py does for images). Budgets cycle through EVENT_LEVELS."""
    info = await text_opponent(source, opponent)
    chosen, condition = text_plan(check_attack(attack), mix)
    budget = EVENT_LEVELS[event.shared_rounds % len(EVENT_LEVELS)]
    result = await make_text(source, opponent=info.name, attack=chosen, budget=budget, condition=condition)
    opened = datetime.now(UTC)  # the countdown starts when the text exists
    event.shared_rounds += 1
    shared = SharedRoundRecord(
        id=new_id(),
        event_id=event.id,
        number=event.shared_rounds,
        phase=event.phase,
        opens_at=opened,
        closes_at=opened + timedelta(seconds=round_seconds),
        pack=info.pack,
        flash_ms=None,
        **text_columns(result),
    )
    session.add(shared)
    await session.flush()
    return shared
