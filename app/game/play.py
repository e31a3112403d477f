"""A player's round from request to reveal: the operations the web pages and the JSON API call, one per request.

Each reads the model service's catalogue through the request's one :class:`~app.game.catalogue.Catalogue`, asks the
model service for the image, stores or scores the round and owns the request's transaction: it commits before it
returns, so whatever the reply acknowledges is already on disk. Workshop rounds follow the event's rules
(app/game/events); everything else follows app/game/rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.config import Settings
from app.db.queries import pending_round, round_answer, round_by_id, shown_png
from app.db.tables import AnswerRecord, EventRecord, PlayerRecord, RoundRecord
from app.errors import Conflict, Invalid, NotFound
from app.game import conditions, disclosure, events, players, rounds
from app.game.catalogue import Catalogue, attack_entry
from app.game.plan import check_task, choose_plan, default_plan
from app.game.reveal import Reveal, build_reveal
from app.game.threshold import Threshold, player_thresholds
from app.images import amplified_perturbation, from_png, to_png


class RoundIsText(Conflict):
    """A text round asked for as an image round (issue #18): it has its own page and API (app/game/text_play.py)."""

    def __init__(self, round_id: str) -> None:
        super().__init__(messages.ROUND_IS_TEXT)
        self.round_id = round_id


@dataclass(frozen=True)
class RoundChoice:
    """What a player asked for: an opponent and an attack (None: the defaults) and a task."""

    opponent: str | None = None
    attack: str | None = None
    task: str = "classify"


@dataclass(frozen=True)
class RoundView:
    """A round as its own player sees it: the question, and once it is answered the reveal."""

    record: RoundRecord
    class_names: tuple[str, ...]
    choices: list[tuple[int, str]]
    answer: AnswerRecord | None = None
    reveal: Reveal | None = None
    truth_hidden_until: datetime | None = None  # an answered together image not revealed yet: no reveal until then
    threshold: Threshold | None = None  # the player's threshold so far on this opponent, beside the machine's
    event_code: str | None = None  # the event whose screens should hear of an answer

    def revealed(self) -> tuple[AnswerRecord, Reveal]:
        if self.answer is None or self.reveal is None:
            raise Conflict(messages.REVEAL_NOT_READY)
        return self.answer, self.reveal


async def join(
    session: AsyncSession, *, nickname: str, event_code: str | None = None
) -> tuple[PlayerRecord, str, EventRecord | None]:
    """A new player on their own or, with ``event_code``, in a workshop event (nickname unique there); committed.
    Returns the player, their token and the event."""
    event = None
    if event_code is None:
        player, token = await players.create_player(session, nickname=nickname)
    else:
        event = await events.event_by_code(session, event_code)
        player, token = await events.join(session, event=event, nickname=nickname)
    await session.commit()
    return player, token, event


async def new_round(
    session: AsyncSession,
    catalogue: Catalogue,
    *,
    player: PlayerRecord,
    choice: RoundChoice,
    settings: Settings,
    accepted: Callable[[RoundChoice], None] | None = None,
    client_key: str = "",
) -> RoundView:
    """The player's next round, stored and committed. An event's player gets the event's round (their unanswered
    one, a new one by its rules, or their copy of the room's image) and may choose nothing; anyone else gets the
    opponent, attack and task they chose, or the defaults, under a condition drawn from ARENA_CONDITION_MIX; a
    player whose round still waits for its answer gets that round back, whatever they chose.
    ``accepted`` hears of a choice once it has proved playable, before the image is made, so a refused choice is
    never remembered while one that only met a busy model service is. ``client_key``: whose fair share of the model
    worker the round takes (rounds.start_round)."""
    event = await events.event_of_player(session, player)
    if event is not None:
        if choice != RoundChoice():
            raise Invalid(messages.ROUND_CHOICE_IN_EVENT)
        record = await events.next_round(
            session, player=player, event=event, source=catalogue, release_connection=True, client_key=client_key
        )
    elif (pending := await pending_round(session, player.id)) is not None:
        record = pending
    else:
        mix = conditions.parse_mix(settings.condition_mix)
        plan = choose_plan(
            catalogue, default=default_plan(settings), opponent=choice.opponent, attack=choice.attack, mix=mix
        )
        task = check_task(choice.task)
        if accepted is not None:
            accepted(choice)
        # Nothing written yet: the connection goes back to the pool while the image is attacked.
        record = await rounds.start_round(
            session,
            player=player,
            source=catalogue,
            plan=plan,
            release_connection=True,
            task=task,
            client_key=client_key,
        )
    await session.commit()
    return await round_view(session, catalogue, player=player, record=record)


async def answer(
    session: AsyncSession,
    catalogue: Catalogue,
    *,
    player: PlayerRecord,
    round_id: str,
    choice: str,
    shown_ms: float | None = None,
    with_threshold: bool = False,
) -> RoundView:
    """Score the player's one answer (by the event's rules for an event round) and commit it: the answer is on disk
    before the reveal is sent. The view says when a together image's truth is still hidden."""
    record, answered, event = await events.answer_round(
        session, player=player, round_id=round_id, choice=choice, source=catalogue, shown_ms=shown_ms
    )
    await session.commit()
    return await round_view(
        session,
        catalogue,
        player=player,
        record=record,
        answer=answered,
        with_threshold=with_threshold,
        event_code=event.code if event is not None else None,
    )


async def show_round(session: AsyncSession, catalogue: Catalogue, *, player: PlayerRecord, round_id: str) -> RoundView:
    """The play page's round: the question, or the reveal with the player's threshold once answered."""
    record = await rounds.player_round(session, player=player, round_id=round_id)
    answered = await round_answer(session, round_id)
    return await round_view(session, catalogue, player=player, record=record, answer=answered, with_threshold=True)


async def revealed_round(
    session: AsyncSession, catalogue: Catalogue, *, player: PlayerRecord, round_id: str
) -> RoundView:
    """An answered round's reveal, to show it again; refused (409) while the reveal rule hides it."""
    record = await rounds.player_round(session, player=player, round_id=round_id)
    answered = await round_answer(session, round_id)
    hidden = await disclosure.why_truth_hidden(session, record, answered)
    if hidden is not None:
        raise Conflict(hidden)
    return await round_view(session, catalogue, player=player, record=record, answer=answered)


async def round_view(
    session: AsyncSession,
    catalogue: Catalogue,
    *,
    player: PlayerRecord,
    record: RoundRecord,
    answer: AnswerRecord | None = None,
    with_threshold: bool = False,
    event_code: str | None = None,
) -> RoundView:
    """The round for its player: an answered round carries its reveal only where the reveal rule shows it."""
    if record.kind == "text":
        raise RoundIsText(record.id)
    info = catalogue.opponent_info(record.opponent)
    reveal = None
    found = None
    hidden_until = await disclosure.truth_hidden_until(session, record) if answer is not None else None
    if answer is not None and hidden_until is None:
        reveal = build_reveal(record, answer, info.class_names, attack_entry(catalogue, record.attack))
        if with_threshold:
            estimates = await player_thresholds(session, player.id, {record.opponent: info.min_eps})
            found = estimates[0] if estimates else None
    return RoundView(
        record=record,
        class_names=info.class_names,
        choices=rounds.offered_choices(record, info.class_names),
        answer=answer,
        reveal=reveal,
        truth_hidden_until=hidden_until,
        threshold=found,
        event_code=event_code,
    )


IMAGE_KINDS = ("adversarial", "original", "perturbation")


async def round_image(session: AsyncSession, *, round_id: str, kind: str) -> bytes:
    """A round's PNG. The round id is the capability: 128 random bits. What the player is shown is public to
    whoever holds the id; the original and the perturbation only exist once the reveal rule shows the truth."""
    if kind not in IMAGE_KINDS:
        raise NotFound(messages.ROUND_NOT_FOUND)
    if kind == "adversarial":  # every round page asks for it: its one column, not the whole row
        shown = await shown_png(session, round_id)
        if shown is None:  # no such round, or a text round, which has no image
            raise NotFound(messages.ROUND_NOT_FOUND)
        return shown
    record = await round_by_id(session, round_id)
    if record is None or record.kind == "text":
        raise NotFound(messages.ROUND_NOT_FOUND)
    hidden = await disclosure.why_truth_hidden(session, record, await round_answer(session, round_id))
    if hidden is not None:
        raise NotFound(hidden)
    if kind == "original":
        return record.clean_png
    return to_png(amplified_perturbation(from_png(record.clean_png), from_png(record.adversarial_png)))
