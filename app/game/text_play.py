"""A player's text round from request to reveal: the operations the text play page and the JSON API call, one per
request, each owning its transaction (it commits before it returns), as app/game/play.py does for image rounds.

The reveal of a text round goes through the one reveal rule (app/game/disclosure.py): it exists only once the round
is answered and, for a copy of a room's together text, once that text has revealed. Until then a view carries the
shown text and the choices only: never the original, the changed words, the truth or the machine's answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.config import Settings
from app.db.queries import pending_round, round_answer
from app.db.tables import AnswerRecord, PlayerRecord, RoundRecord
from app.errors import Conflict, Invalid
from app.game import conditions, disclosure, events, rounds, text
from app.game.catalogue import Catalogue
from app.ml.packs.text.tokens import is_word, tokenize


@dataclass(frozen=True)
class Piece:
    """One piece of a text as the reveal draws it: a word (``changed`` when the round swapped it) or what lies
    between words."""

    text: str
    changed: bool = False


@dataclass(frozen=True)
class TextReveal:
    round_id: str
    original: tuple[Piece, ...]
    shown: tuple[Piece, ...]
    true_label: str
    player_label: str
    model_label: str
    clean_label: str
    correct: bool
    model_correct: bool
    beat_machine: bool
    model_confidence: float
    top3: tuple[tuple[str, float], ...]
    budget: float
    words_changed: int
    n_words: int
    similarity: float | None
    queries: int | None
    points: int
    opponent: str
    attack: str
    surrogate: str | None
    condition: str
    condition_text: str

    @property
    def budget_text(self) -> str:
        allowed = int(self.budget * self.n_words + 1e-9)
        return f"{self.budget:.0%} of the words ({allowed} of {self.n_words})"


@dataclass(frozen=True)
class TextView:
    record: RoundRecord
    class_names: tuple[str, ...]
    answer: AnswerRecord | None = None
    reveal: TextReveal | None = None
    truth_hidden_until: datetime | None = None
    event_code: str | None = None

    @property
    def choices(self) -> list[tuple[int, str]]:
        return list(enumerate(self.class_names))


def pieces(value: str, changed: set[int]) -> tuple[Piece, ...]:
    """The text in pieces, the words at positions ``changed`` (among the words) marked."""
    out, position = [], 0
    for token in tokenize(value):
        if is_word(token):
            out.append(Piece(token, position in changed))
            position += 1
        else:
            out.append(Piece(token))
    return tuple(out)


def build_text_reveal(record: RoundRecord, answer: AnswerRecord, class_names: tuple[str, ...]) -> TextReveal:
    changed = set(record.changed_words or [])
    probs = list(record.model_probs)
    ranked = sorted(range(len(probs)), key=lambda i: -probs[i])[:3]
    return TextReveal(
        round_id=record.id,
        original=pieces(record.original_text or "", changed),
        shown=pieces(record.shown_text or "", changed),
        true_label=class_names[record.true_label],
        player_label=class_names[answer.choice],
        model_label=class_names[record.model_label],
        clean_label=class_names[record.clean_label],
        correct=answer.correct,
        model_correct=answer.model_correct,
        beat_machine=answer.correct and not answer.model_correct,
        model_confidence=float(record.model_confidence),
        top3=tuple((class_names[i], float(probs[i])) for i in ranked),
        budget=float(record.eps),
        words_changed=len(changed),
        n_words=int(record.n_words or 0),
        similarity=record.similarity,
        queries=record.queries,
        points=answer.points,
        opponent=record.opponent,
        attack=record.attack,
        surrogate=record.surrogate,
        condition=record.condition,
        condition_text=text.CONDITION_TEXT.get(record.condition, ""),
    )


async def text_view(
    session: AsyncSession,
    catalogue: Catalogue,
    *,
    record: RoundRecord,
    answer: AnswerRecord | None = None,
    event_code: str | None = None,
) -> TextView:
    info = await text.text_opponent(catalogue, record.opponent)
    hidden_until = await disclosure.truth_hidden_until(session, record) if answer is not None else None
    reveal = None
    if answer is not None and hidden_until is None:
        reveal = build_text_reveal(record, answer, info.class_names)
    return TextView(record, info.class_names, answer, reveal, hidden_until, event_code)


def text_mix(settings: Settings) -> Mapping[str, float]:
    return conditions.parse_mix(settings.condition_mix)


async def new_text_round(
    session: AsyncSession,
    catalogue: Catalogue,
    *,
    player: PlayerRecord,
    settings: Settings,
    opponent: str | None = None,
    attack: str | None = None,
    client_key: str = "",
) -> RoundRecord:
    """The player's next round, committed: their pending round if one waits (of either kind: the caller shows it on
    its own page), the event's next round for an event's player, else a new text round under ARENA_CONDITION_MIX.
    ``client_key``: whose fair share of the model worker a new round takes (text.start_text_round)."""
    event = await events.event_of_player(session, player)
    if event is not None:
        if opponent is not None or attack is not None:
            raise Invalid(messages.ROUND_CHOICE_IN_EVENT)
        record = await events.next_round(
            session, player=player, event=event, source=catalogue, release_connection=True, client_key=client_key
        )
    elif (pending := await pending_round(session, player.id)) is not None:
        record = pending
    else:
        record = await text.start_text_round(
            session,
            player=player,
            source=catalogue,
            opponent=opponent,
            attack=attack,
            mix=text_mix(settings),
            release_connection=True,
            client_key=client_key,
        )
    await session.commit()
    return record


async def text_round(session: AsyncSession, *, player: PlayerRecord, round_id: str) -> RoundRecord:
    """One of the player's rounds that is a text round (an image round is refused: it has its own page)."""
    record = await rounds.player_round(session, player=player, round_id=round_id)
    if not text.is_text(record):
        raise Conflict(messages.TEXT_ROUND_IS_IMAGE)
    return record


async def show_text_round(
    session: AsyncSession, catalogue: Catalogue, *, player: PlayerRecord, round_id: str
) -> TextView:
    record = await text_round(session, player=player, round_id=round_id)
    return await text_view(session, catalogue, record=record, answer=await round_answer(session, round_id))


async def answer_text(
    session: AsyncSession, catalogue: Catalogue, *, player: PlayerRecord, round_id: str, choice: str
) -> TextView:
    """Score the one answer (by the event's rules for an event's round) and commit it before the reveal is built."""
    await text_round(session, player=player, round_id=round_id)
    record, answered, event = await events.answer_round(
        session, player=player, round_id=round_id, choice=choice, source=catalogue
    )
    await session.commit()
    return await text_view(
        session, catalogue, record=record, answer=answered, event_code=event.code if event is not None else None
    )


async def revealed_text(
    session: AsyncSession, catalogue: Catalogue, *, player: PlayerRecord, round_id: str
) -> TextView:
    """An answered text round's reveal; refused (409) while the reveal rule hides it."""
    record = await text_round(session, player=player, round_id=round_id)
    answered = await round_answer(session, round_id)
    hidden = await disclosure.why_truth_hidden(session, record, answered)
    if hidden is not None:
        raise Conflict(hidden)
    return await text_view(session, catalogue, record=record, answer=answered)
