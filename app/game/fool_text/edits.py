"""The editor's rounds: start one on a definition the opponent gets right, check an edit live, submit it.

Each function is one request's work and owns its transaction (commits before it returns). The original text, its
category and the opponent's first answer are stored when the round starts, so a check or a submission names only
the round and the edited text: the server measures the edit (app/game/fool_text/rules.py), asks the model service
for the opponent's answer and the similarity, and decides; nothing the page computed is trusted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import connection_released
from app.db.tables import PlayerRecord, TextEditRecord, new_id, utcnow
from app.errors import Conflict, Invalid, NotFound
from app.game.fool_text import rules, texts
from app.game.fool_text.texts import Answer
from app.ml.packs.text.definitions import PACK_NAME

EDIT_NOT_FOUND = "No such text round (or not yours)."
EDIT_CLOSED = "This text round is over: start a new one."
OPEN, WON, LOST, SKIPPED = "open", "won", "lost", "skipped"


@dataclass(frozen=True)
class EditCheck:
    """The server's verdict on one edit: what the page shows live and what a submission decides on."""

    edited: str
    measure: rules.EditMeasure
    answer: Answer
    similarity: float
    floor: float
    problems: tuple[str, ...]
    fooled: bool  # the opponent's answer differs from its (correct) answer on the original

    @property
    def wins(self) -> bool:
        return self.fooled and not self.problems


def before_answer(record: TextEditRecord) -> Answer:
    return Answer(record.before_label, tuple(record.before_probs))


def after_answer(record: TextEditRecord) -> Answer | None:
    if record.after_label is None or record.after_probs is None:
        return None
    return Answer(record.after_label, tuple(record.after_probs))


async def open_edit(session: AsyncSession, player_id: str) -> TextEditRecord | None:
    return await session.scalar(select(TextEditRecord).where(TextEditRecord.open_player_id == player_id))


async def player_edit(session: AsyncSession, *, player: PlayerRecord, edit_id: str) -> TextEditRecord:
    record = await session.get(TextEditRecord, edit_id)
    if record is None or record.player_id != player.id:
        raise NotFound(EDIT_NOT_FOUND)
    return record


async def start_edit(
    session: AsyncSession,
    service: object,
    *,
    player: PlayerRecord,
    opponent: str | None,
    budget: float,
    client_key: str = "",
) -> TextEditRecord:
    """The player's open round, or a new one (an open round on another opponent is skipped). Committed.
    ``client_key`` (opaque here, as in app/game/rounds.start_round): whose fair share of the model worker the
    opponent's answers take, here and in check_edit and submit_edit."""
    chosen = texts.check_opponent(opponent)
    player_id = player.id
    current = await open_edit(session, player_id)
    if current is not None and current.opponent == chosen:
        return current
    current_id = current.id if current is not None else None
    async with connection_released(session, player):  # (expired inside: only locals are read there)
        offer = await texts.draw_offer(service, chosen, player_id, client_key)
    if current_id is not None:
        await session.execute(
            update(TextEditRecord)
            .where(TextEditRecord.id == current_id, TextEditRecord.status == OPEN)
            .values(status=SKIPPED, open_player_id=None)
        )
    record = TextEditRecord(
        id=new_id(),
        player_id=player_id,
        open_player_id=player_id,
        pack=PACK_NAME,
        opponent=chosen,
        text_index=offer.index,
        original=offer.text,
        true_label=offer.true_label,
        budget=budget,
        before_label=offer.answer.label,
        before_probs=list(offer.answer.probabilities),
        n_words=rules.measure_edit(offer.text, offer.text, budget).n_words,
    )
    session.add(record)
    try:
        await session.flush()
    except IntegrityError:  # another request of the same player opened one first: that one is theirs
        await session.rollback()
        winner = await open_edit(session, player_id)
        if winner is None:
            raise
        return winner
    await session.commit()
    return record


@dataclass(frozen=True)
class Basis:
    """What judging an edit reads of its round, copied out so the round may be expired while the model answers."""

    original: str
    opponent: str
    budget: float
    before_label: int

    @classmethod
    def of(cls, record: TextEditRecord) -> Basis:
        return cls(record.original, record.opponent, record.budget, record.before_label)


async def judge(service: object, record: Basis, raw: object, client: str, share: str = "") -> EditCheck:
    """Measure an edit and ask the model service about it (answer and similarity at once)."""
    edited = rules.clean_edit(raw)
    measure = rules.measure_edit(record.original, edited, record.budget)
    (answer,), measured = await asyncio.gather(
        texts.classify(service, record.opponent, [edited], client, share),
        texts.similarity(service, record.original, edited, client),
    )
    problems = rules.rule_problems(measure, measured.similarity, measured.floor)
    return EditCheck(
        edited=edited,
        measure=measure,
        answer=answer,
        similarity=measured.similarity,
        floor=measured.floor,
        problems=tuple(problems),
        fooled=answer.label != record.before_label,
    )


async def check_edit(
    session: AsyncSession,
    service: object,
    *,
    player: PlayerRecord,
    edit_id: str,
    edited: object,
    client_key: str = "",
) -> tuple[TextEditRecord, EditCheck]:
    """The live verdict on an edit of an open round; nothing is stored."""
    record = await player_edit(session, player=player, edit_id=edit_id)
    if record.status != OPEN:
        raise Conflict(EDIT_CLOSED)
    basis, player_id = Basis.of(record), player.id
    async with connection_released(session, record, player):
        verdict = await judge(service, basis, edited, player_id, client_key)
    return record, verdict


async def submit_edit(
    session: AsyncSession,
    service: object,
    *,
    player: PlayerRecord,
    edit_id: str,
    edited: object,
    client_key: str = "",
) -> tuple[TextEditRecord, EditCheck]:
    """Re-check everything and close the round: won when the answer changed within the rules, lost when the rules
    held but the answer did not change. An edit that breaks a rule is refused (Invalid) and the round stays open.
    Committed; a second submission is a Conflict."""
    record, verdict = await check_edit(
        session, service, player=player, edit_id=edit_id, edited=edited, client_key=client_key
    )
    if verdict.problems:
        raise Invalid(" ".join(verdict.problems))
    status = WON if verdict.fooled else LOST
    closed = await session.execute(
        update(TextEditRecord)
        .where(TextEditRecord.id == record.id, TextEditRecord.status == OPEN)
        .values(
            status=status,
            open_player_id=None,
            submitted_at=utcnow(),
            edited=verdict.edited,
            after_label=verdict.answer.label,
            after_probs=list(verdict.answer.probabilities),
            words_changed=verdict.measure.changed,
            similarity=verdict.similarity,
            similarity_floor=verdict.floor,
        )
        .execution_options(synchronize_session=False)
    )
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict(EDIT_CLOSED)
    await session.commit()
    await session.refresh(record)
    return record, verdict


def edit_measure(record: TextEditRecord) -> rules.EditMeasure | None:
    """The stored edit measured again (for the result page); None before a submission."""
    if record.edited is None:
        return None
    return rules.measure_edit(record.original, record.edited, record.budget)
