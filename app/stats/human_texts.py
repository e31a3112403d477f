"""The dataset of human-written adversarial texts (fool the machine yourself, app/game/fool_text): one row per
submitted edit (won or lost), with the opponent's answers and probabilities before and after, the words changed,
the similarity, and the other players' readings of it (validations). Streamed page by page (keyset pagination on
(submitted_at, id)), each page read in a short session of its own, like the answer export (app/stats/export.py),
whose CSV escaping and id rule it shares: ids go out exactly as stored."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import PlayerRecord, TextEditRecord, TextValidationRecord
from app.game.fool_text.texts import CLASS_NAMES
from app.game.fool_text.validation import is_validated
from app.stats.export import PAGE_SIZE, SessionOpener, csv_cell, iso_utc, keyset_pages

SUBMITTED = ("won", "lost")
COLUMNS: tuple[str, ...] = (
    "edit_id",
    "submitted_at",
    "player_id",
    "nickname",
    "pack",
    "opponent",
    "text_index",
    "original",
    "edited",
    "true_label",
    "budget",
    "n_words",
    "words_changed",
    "similarity",
    "similarity_floor",
    "model_before",
    "model_before_confidence",
    "model_before_probs",
    "model_after",
    "model_after_confidence",
    "model_after_probs",
    "fooled",
    "validations",
    "validations_agreeing",
    "validated",
    "validation_answers",
)
ID_COLUMNS = frozenset({"edit_id", "player_id"})
EXPORT_FORMATS = ("csv", "json")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def probabilities(values: Sequence[float] | None) -> dict[str, float] | None:
    if values is None:
        return None
    return {name: round(float(p), 6) for name, p in zip(CLASS_NAMES, values, strict=True)}


async def iter_rows(open_session: SessionOpener, *, page_size: int = PAGE_SIZE) -> AsyncIterator[dict[str, Any]]:
    """Rows oldest submission first; ``validation_answers`` lists each reading (id, player, time, answer)."""
    query = (
        select(TextEditRecord, PlayerRecord.nickname)
        .join(PlayerRecord, PlayerRecord.id == TextEditRecord.player_id)
        .where(TextEditRecord.status.in_(SUBMITTED), TextEditRecord.submitted_at.is_not(None))
    )
    pages = keyset_pages(
        open_session, query, TextEditRecord.submitted_at, TextEditRecord.id, page_size=page_size, with_page=readings_of
    )
    async for rows, readings in pages:
        assert readings is not None  # with_page runs for every page that has rows
        for record, nickname in rows:
            yield row_of(record, nickname, readings[record.id])


async def readings_of(
    session: AsyncSession, rows: Sequence[Row[TextEditRecord, str]]
) -> dict[str, list[TextValidationRecord]]:
    """The answered readings of a page's edits, by edit id, oldest first."""
    readings: dict[str, list[TextValidationRecord]] = defaultdict(list)
    answered = await session.scalars(
        select(TextValidationRecord)
        .where(
            TextValidationRecord.edit_id.in_([record.id for record, _ in rows]),
            TextValidationRecord.choice.is_not(None),
        )
        .order_by(TextValidationRecord.answered_at, TextValidationRecord.id)
    )
    for reading in answered:
        readings[reading.edit_id].append(reading)
    return readings


def row_of(record: TextEditRecord, nickname: str, readings: list[TextValidationRecord]) -> dict[str, Any]:
    agreeing = sum(1 for r in readings if r.agrees)
    after = record.after_label
    after_confidence = record.after_probs[after] if after is not None and record.after_probs else None
    return {
        "edit_id": record.id,
        "submitted_at": iso_utc(record.submitted_at) if record.submitted_at else None,
        "player_id": record.player_id,
        "nickname": nickname,
        "pack": record.pack,
        "opponent": record.opponent,
        "text_index": record.text_index,
        "original": record.original,
        "edited": record.edited,
        "true_label": CLASS_NAMES[record.true_label],
        "budget": record.budget,
        "n_words": record.n_words,
        "words_changed": record.words_changed,
        "similarity": round(record.similarity, 6) if record.similarity is not None else None,
        "similarity_floor": record.similarity_floor,
        "model_before": CLASS_NAMES[record.before_label],
        "model_before_confidence": round(record.before_probs[record.before_label], 6),
        "model_before_probs": probabilities(record.before_probs),
        "model_after": CLASS_NAMES[after] if after is not None else None,
        "model_after_confidence": round(after_confidence, 6) if after_confidence is not None else None,
        "model_after_probs": probabilities(record.after_probs),
        "fooled": record.status == "won",
        "validations": len(readings),
        "validations_agreeing": agreeing,
        "validated": is_validated(len(readings), agreeing),
        "validation_answers": [
            {
                "validation_id": r.id,
                "player_id": r.player_id,
                "answered_at": iso_utc(r.answered_at) if r.answered_at else None,
                "answer": CLASS_NAMES[r.choice] if r.choice is not None else None,
                "agrees": r.agrees,
            }
            for r in readings
        ],
    }


def csv_value(column: str, value: Any) -> Any:
    """Nested values as JSON text (the probabilities by class, the readings); free text escaped, ids never."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return csv_cell(value, escape=column not in ID_COLUMNS)


def csv_line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


async def stream_human_texts(
    open_session: SessionOpener, fmt: str, *, page_size: int = PAGE_SIZE
) -> AsyncIterator[str]:
    """The whole dataset as text chunks: CSV with a header, or a JSON array."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    yield csv_line(COLUMNS) if fmt == "csv" else "["
    first = True
    async for row in iter_rows(open_session, page_size=page_size):
        if fmt == "csv":
            yield csv_line([csv_value(c, row[c]) for c in COLUMNS])
        else:
            yield ("" if first else ",\n") + json.dumps(row, ensure_ascii=False)
        first = False
    if fmt == "json":
        yield "]\n"
