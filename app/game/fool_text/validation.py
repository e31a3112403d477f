"""Validation rounds: another player reads a won human-written text ("what kind of thing does this define?") and
answers once. The truth (the original category, the original text, the machine's answers) is withheld until the
answer is in (app/game/disclosure.validation_truth_hidden), and a text counts as validated when people still read it
as the original category: at least ``QUORUM`` answers, more than half of them naming it.

A player never validates their own texts, sees each text at most once (a unique (text, player) pair) and holds at
most one unanswered validation round at a time (a unique open-player index), all decided by the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import PlayerRecord, TextEditRecord, TextValidationRecord, new_id, utcnow
from app.errors import Conflict, Invalid, NotFound
from app.game import disclosure
from app.game.fool_text.edits import WON
from app.game.fool_text.texts import CLASS_NAMES

QUORUM = 1
VALIDATION_NOT_FOUND = "No such validation round (or not yours)."
VALIDATION_ANSWERED = "You have already answered this one."
NOTHING_TO_VALIDATE = "No one else's fooling text is waiting to be read right now. Write one yourself!"
CHOICE_INVALID = "Pick one of the categories."


@dataclass(frozen=True)
class ValidationView:
    """A validation round as its player may see it: the text and choices, and the truth only once answered."""

    record: TextValidationRecord
    text: str
    class_names: tuple[str, ...]
    edit: TextEditRecord | None  # None while the truth is withheld

    @property
    def answered(self) -> bool:
        return self.edit is not None


def is_validated(answers: int, agreeing: int) -> bool:
    """People still read the text as its original category."""
    return answers >= QUORUM and 2 * agreeing > answers


async def view(session: AsyncSession, record: TextValidationRecord) -> ValidationView:
    edit = await session.get(TextEditRecord, record.edit_id)
    if edit is None or edit.edited is None:
        raise NotFound(VALIDATION_NOT_FOUND)
    shown = None if disclosure.validation_truth_hidden(record) else edit
    return ValidationView(record, edit.edited, CLASS_NAMES, shown)


async def player_validation(session: AsyncSession, *, player: PlayerRecord, validation_id: str) -> ValidationView:
    record = await session.get(TextValidationRecord, validation_id)
    if record is None or record.player_id != player.id:
        raise NotFound(VALIDATION_NOT_FOUND)
    return await view(session, record)


async def open_validation(session: AsyncSession, player_id: str) -> TextValidationRecord | None:
    return await session.scalar(select(TextValidationRecord).where(TextValidationRecord.open_player_id == player_id))


async def start_validation(session: AsyncSession, *, player: PlayerRecord) -> ValidationView:
    """The player's unanswered validation round, or a new one on the won text of someone else that has the fewest
    readings so far (oldest first among equals). Committed. NotFound when there is none to read."""
    current = await open_validation(session, player.id)
    if current is not None:
        return await view(session, current)
    seen = select(TextValidationRecord.edit_id).where(TextValidationRecord.player_id == player.id)
    readings = (
        select(TextValidationRecord.edit_id, func.count().label("n")).group_by(TextValidationRecord.edit_id).subquery()
    )
    candidate = await session.scalar(
        select(TextEditRecord)
        .outerjoin(readings, readings.c.edit_id == TextEditRecord.id)
        .where(TextEditRecord.status == WON, TextEditRecord.player_id != player.id, TextEditRecord.id.not_in(seen))
        .order_by(func.coalesce(readings.c.n, 0), TextEditRecord.submitted_at, TextEditRecord.id)
        .limit(1)
    )
    if candidate is None:
        raise NotFound(NOTHING_TO_VALIDATE)
    record = TextValidationRecord(id=new_id(), edit_id=candidate.id, player_id=player.id, open_player_id=player.id)
    session.add(record)
    try:
        await session.flush()
    except IntegrityError:  # the same player's other request took one first
        await session.rollback()
        winner = await open_validation(session, player.id)
        if winner is None:
            raise
        return await view(session, winner)
    await session.commit()
    return await view(session, record)


async def answer_validation(
    session: AsyncSession, *, player: PlayerRecord, validation_id: str, choice: int
) -> ValidationView:
    """Record the one answer of a validation round (Conflict on a second one), then show its truth. Committed."""
    current = await player_validation(session, player=player, validation_id=validation_id)
    if not 0 <= choice < len(CLASS_NAMES):
        raise Invalid(CHOICE_INVALID)
    if current.answered:
        raise Conflict(VALIDATION_ANSWERED)
    edit = await session.get(TextEditRecord, current.record.edit_id)
    if edit is None:
        raise NotFound(VALIDATION_NOT_FOUND)
    done = await session.execute(
        update(TextValidationRecord)
        .where(TextValidationRecord.id == validation_id, TextValidationRecord.choice.is_(None))
        .values(choice=choice, agrees=choice == edit.true_label, answered_at=utcnow(), open_player_id=None)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict(VALIDATION_ANSWERED)
    await session.commit()
    await session.refresh(current.record)
    return await view(session, current.record)


async def readings_of(session: AsyncSession, edit_id: str) -> tuple[int, int]:
    """(answers, answers naming the original category) of one text."""
    row = (
        await session.execute(
            select(
                func.count(), func.coalesce(func.sum(case((TextValidationRecord.agrees.is_(True), 1), else_=0)), 0)
            ).where(TextValidationRecord.edit_id == edit_id, TextValidationRecord.choice.is_not(None))
        )
    ).one()
    return int(row[0]), int(row[1])
