"""Fool it by hand (issue #21) in numbers: the leaderboard of human adversaries, people's accuracy on images made by
a person against images made by an attack (with Wilson intervals), a workshop's best edits, and the dataset of every
painted image (JSON or CSV with base64 PNGs, streamed in keyset pages like app/stats/export.py, ids unchanged)."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.paint_tables import PaintingRecord, PaintStrokeRecord
from app.db.tables import AnswerRecord, PlayerRecord, RoundRecord
from app.game.disclosure import settled
from app.game.paint_rounds import HUMAN_ATTACK
from app.stats.export import FORMULA_PREFIXES, PAGE_SIZE, SessionOpener, iso_utc, keyset_pages
from app.stats.intervals import Proportion


@dataclass(frozen=True)
class AdversaryRow:
    rank: int
    player_id: str
    nickname: str
    points: int
    fooled: int
    paintings: int
    fewest_pixels: int | None
    smallest_l2: float | None


async def adversaries(session: AsyncSession, *, limit: int = 20, event_id: str | None = None) -> list[AdversaryRow]:
    """Players by the points of their winning paintings (smaller wins score more), then fewest pixels."""
    won = PaintingRecord.status == "fooled"
    query = (
        select(
            PlayerRecord.id,
            PlayerRecord.nickname,
            func.coalesce(func.sum(PaintingRecord.points), 0).label("points"),
            func.sum(case((won, 1), else_=0)).label("fooled"),
            func.count(PaintingRecord.id).label("paintings"),
            func.min(case((won, PaintingRecord.pixels), else_=None)).label("fewest"),
            func.min(case((won, PaintingRecord.l2), else_=None)).label("smallest_l2"),
        )
        .join(PaintingRecord, PaintingRecord.player_id == PlayerRecord.id)
        .group_by(PlayerRecord.id, PlayerRecord.nickname)
        .order_by(func.coalesce(func.sum(PaintingRecord.points), 0).desc(), PlayerRecord.id)
        .limit(limit)
    )
    if event_id is not None:
        query = query.where(PaintingRecord.event_id == event_id)
    rows = (await session.execute(query)).all()
    return [
        AdversaryRow(
            rank=position,
            player_id=row[0],
            nickname=row[1],
            points=int(row[2]),
            fooled=int(row[3] or 0),
            paintings=int(row[4]),
            fewest_pixels=None if row[5] is None else int(row[5]),
            smallest_l2=None if row[6] is None else float(row[6]),
        )
        for position, row in enumerate(rows, start=1)
    ]


async def best_edits(session: AsyncSession, event_id: str, *, limit: int = 6) -> list[tuple[PaintingRecord, str]]:
    """A workshop's winning paintings, best first (most points, then earliest), with their painters' nicknames."""
    query = (
        select(PaintingRecord, PlayerRecord.nickname)
        .join(PlayerRecord, PlayerRecord.id == PaintingRecord.player_id)
        .where(PaintingRecord.event_id == event_id, PaintingRecord.status == "fooled")
        .order_by(PaintingRecord.points.desc(), PaintingRecord.finished_at, PaintingRecord.id)
        .limit(limit)
    )
    return [(record, nickname) for record, nickname in (await session.execute(query)).all()]


async def room_progress(session: AsyncSession, event_id: str) -> tuple[int, int]:
    """How many of the room's paintings there are and how many fooled the opponent."""
    row = (
        await session.execute(
            select(
                func.count(PaintingRecord.id), func.sum(case((PaintingRecord.status == "fooled", 1), else_=0))
            ).where(PaintingRecord.event_id == event_id)
        )
    ).one()
    return int(row[0]), int(row[1] or 0)


async def by_maker(session: AsyncSession) -> dict[str, Any]:
    """People's answers on adversarial images, split by who made the image: a person (rounds of attack ``human``,
    "can you still see it?") or an attack (every other adversarial round); the same split for the machine's own
    answer. Only people who answered both kinds count in ``same_people``, so the comparison is on the same people."""
    query = (
        select(
            RoundRecord.attack == HUMAN_ATTACK,
            AnswerRecord.player_id,
            AnswerRecord.correct,
            AnswerRecord.model_correct,
        )
        .join(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
        .where(RoundRecord.condition == "adversarial", RoundRecord.task == "classify", settled())
    )
    rows = (await session.execute(query)).all()
    people = {True: set(), False: set()}  # type: dict[bool, set[str]]
    for human, player_id, _correct, _model in rows:
        people[bool(human)].add(player_id)
    both = people[True] & people[False]

    def tally(human: bool, only: set[str] | None) -> dict[str, Any]:
        chosen = [r for r in rows if bool(r[0]) == human and (only is None or r[1] in only)]
        person = Proportion(sum(1 for r in chosen if r[2]), len(chosen)).as_dict()
        machine = Proportion(sum(1 for r in chosen if r[3]), len(chosen)).as_dict()
        return {"people": person, "machine": machine, "players": len({r[1] for r in chosen})}

    return {
        "maker": {"person": tally(True, None), "attack": tally(False, None)},
        "same_people": {"person": tally(True, both), "attack": tally(False, both), "players": len(both)},
    }


# -- the dataset -----------------------------------------------------------------------------------------------

PAINTING_COLUMNS: tuple[str, ...] = (
    "painting_id",
    "created_at",
    "finished_at",
    "player_id",
    "nickname",
    "event_id",
    "pack",
    "model",
    "image_index",
    "true_label",
    "tool",
    "budget",
    "status",
    "model_answer",
    "pixels",
    "l2",
    "linf",
    "points",
    "strokes",
    "answers",
    "clean_png_base64",
    "painted_png_base64",
)
ID_COLUMNS = frozenset({"painting_id", "player_id", "event_id"})
PAINT_FORMATS = ("json", "csv")


# Each painting's strokes and the answers after each, by painting id.
StrokeHistory = dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]


async def strokes_of(session: AsyncSession, painting_ids: Sequence[str]) -> StrokeHistory:
    """Each painting's strokes and the opponent's answer after each, in the order they were applied: the dataset's
    ``strokes`` and ``answers`` lists, one query for a whole page of paintings."""
    found: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {key: ([], []) for key in painting_ids}
    if not painting_ids:
        return found
    query = (
        select(PaintStrokeRecord)
        .where(PaintStrokeRecord.painting_id.in_(painting_ids))
        .order_by(PaintStrokeRecord.painting_id, PaintStrokeRecord.number)
    )
    for row in await session.scalars(query):
        strokes, answers = found[row.painting_id]
        strokes.append(row.stroke)
        answers.append({"stroke": row.number, "label": row.label, "probabilities": row.probabilities})
    return found


async def iter_paintings(
    open_session: SessionOpener, class_names_of: Any, *, page_size: int = PAGE_SIZE
) -> AsyncIterator[dict[str, Any]]:
    """Every painting, oldest first, one keyset page per short session."""
    query = select(PaintingRecord, PlayerRecord.nickname).join(
        PlayerRecord, PlayerRecord.id == PaintingRecord.player_id
    )

    async def strokes_of_page(session: AsyncSession, rows: Sequence[Row[PaintingRecord, str]]) -> StrokeHistory:
        return await strokes_of(session, [record.id for record, _nickname in rows])

    moment, ident = PaintingRecord.created_at, PaintingRecord.id
    pages = keyset_pages(open_session, query, moment, ident, page_size=page_size, with_page=strokes_of_page)
    async for rows, history in pages:
        assert history is not None  # with_page runs for every page that has rows
        for record, nickname in rows:
            strokes, answers = history[record.id]
            names: Sequence[str] = class_names_of(record.pack)
            yield {
                "painting_id": record.id,
                "created_at": iso_utc(record.created_at),
                "finished_at": iso_utc(record.finished_at) if record.finished_at else None,
                "player_id": record.player_id,
                "nickname": nickname,
                "event_id": record.event_id,
                "pack": record.pack,
                "model": record.opponent,
                "image_index": record.image_index,
                "true_label": names[record.true_label],
                "tool": record.tool,
                "budget": record.budget,
                "status": record.status,
                "model_answer": names[record.model_label],
                "pixels": record.pixels,
                "l2": round(record.l2, 6),
                "linf": round(record.linf, 6),
                "points": record.points,
                "strokes": strokes,
                "answers": answers,
                "clean_png_base64": base64.b64encode(record.clean_png).decode("ascii"),
                "painted_png_base64": base64.b64encode(record.painted_png).decode("ascii"),
            }


def csv_value(column: str, value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    if value is True or value is False:
        return "true" if value else "false"
    if column not in ID_COLUMNS and isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


async def stream_paintings(
    open_session: SessionOpener, fmt: str, class_names_of: Any, *, page_size: int = PAGE_SIZE
) -> AsyncIterator[str]:
    """The dataset as text chunks: a JSON array, or CSV with a header (strokes and answers as JSON text)."""
    if fmt not in PAINT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(PAINT_FORMATS)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt == "csv":
        writer.writerow(PAINTING_COLUMNS)
    else:
        buffer.write("[")
    first = True
    async for row in iter_paintings(open_session, class_names_of, page_size=page_size):
        if fmt == "csv":
            writer.writerow([csv_value(column, row[column]) for column in PAINTING_COLUMNS])
        else:
            buffer.write(("" if first else ",\n") + json.dumps(row, ensure_ascii=False))
        first = False
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if fmt == "json":
        buffer.write("]\n")
    yield buffer.getvalue()
