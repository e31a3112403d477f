"""The stock: attacked images made ahead of time and kept in the database, so that a prepared event's rounds never
wait for the model and a restart loses none of them.

An image is stocked under its *key*, the sha256 of what makes two images interchangeable for a player: opponent,
attack, parameters, condition and budget (the image and seed are the image's own). A round asks for its key and
claims the oldest unclaimed image in one statement, ``UPDATE ... WHERE id = (SELECT ... LIMIT 1 FOR UPDATE SKIP
LOCKED) RETURNING``: on PostgreSQL concurrent claims skip each other's locked rows; SQLite has one writer at a time,
so the same statement is atomic there (it ignores FOR UPDATE). The claim is part of the round's transaction: a round
that fails rolls its claim back, so no image is lost, and a committed claim is never handed out again (fresh mode).

A round of a prepared event claims more broadly (``claim_for_event``): the oldest unclaimed image of its event among
every key its phase may draw (each condition of the mix at each budget level). The stock was drawn by the event's own
rules, so the image served follows the design the event asked for; the round takes its condition and budget from the
image. Claiming by the exact key a round had drawn left players waiting for the model while other keys of the same
event still held images (benchmarks/RESULTS.md, "Prepared rounds: where the time goes").

The stock sits in front of the in-memory ready-round pool (app/game/pool.py) rather than replacing it: the pool
learns plain play's demand as it goes and keeps a few results for seconds, which needs no preparation; the stock
holds what an event will need, counted beforehand, for as long as it takes. A key with no stock falls through to
the pool and the model, as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ScalarSelect, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import StockImageRecord, attacked_image_columns
from app.ml.service.contracts import ImageJob

# The columns a round takes from its plan and its event (app/game/plan.plan_columns, the pack, the flash time), not
# from the image: a stocked image gives the round every other column (those of app/game/rounds.image_columns).
SET_BY_THE_ROUND = frozenset(
    {"pack", "opponent", "attack", "attack_params", "eps", "norm", "surrogate", "condition", "flash_ms"}
)


def stock_key(job: ImageJob) -> str:
    """The key of a job's images: the same for every job that differs only in its image and seed."""
    described = [job.opponent, job.attack, [list(pair) for pair in job.params], job.condition, repr(float(job.eps))]
    return hashlib.sha256(json.dumps(described, default=str).encode()).hexdigest()


def stocked_image(
    job: ImageJob, columns: dict[str, Any], *, event_id: str | None = None, fixed: bool = False
) -> StockImageRecord:
    """A stock row for ``job``'s result; ``columns`` are every AttackedImage column of the round it will become.
    ``fixed``: an item of the event's fixed set, shown to each of its players and never claimed."""
    return StockImageRecord(
        stock_key=stock_key(job), event_id=event_id, made_at=datetime.now(UTC), fixed=fixed, **columns
    )


async def claim_for_event(session: AsyncSession, event_id: str, keys: Collection[str]) -> dict[str, Any] | None:
    """Every AttackedImage column of the oldest unclaimed fresh image prepared for the event under one of ``keys``,
    claimed in the session's transaction; None when there is none (or, on PostgreSQL, every one is being claimed)."""
    if not keys:
        return None
    oldest_unclaimed = (
        select(StockImageRecord.id)
        .where(
            StockImageRecord.event_id == event_id,
            StockImageRecord.claimed_at.is_(None),
            StockImageRecord.fixed.is_(False),
            StockImageRecord.stock_key.in_(sorted(keys)),
        )
        .order_by(StockImageRecord.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return await _claimed_columns(session, oldest_unclaimed)


async def claim(session: AsyncSession, job: ImageJob) -> dict[str, Any] | None:
    """The image columns of an unclaimed stock image with ``job``'s key, claimed in the session's
    transaction; None when there is none (or, on PostgreSQL, when every one is being claimed right now)."""
    oldest_unclaimed = (
        select(StockImageRecord.id)
        .where(
            StockImageRecord.stock_key == stock_key(job),
            StockImageRecord.claimed_at.is_(None),
            StockImageRecord.fixed.is_(False),
        )
        .order_by(StockImageRecord.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    columns = await _claimed_columns(session, oldest_unclaimed)
    if columns is None:
        return None
    return {name: value for name, value in columns.items() if name not in SET_BY_THE_ROUND}


async def _claimed_columns(session: AsyncSession, chosen_id: ScalarSelect[int]) -> dict[str, Any] | None:
    """Claim the image ``chosen_id`` selects, in one statement, and hand back its columns."""
    claimed = await session.scalar(
        update(StockImageRecord)
        .where(StockImageRecord.id == chosen_id, StockImageRecord.claimed_at.is_(None))
        .values(claimed_at=datetime.now(UTC))
        .returning(StockImageRecord)
        .execution_options(synchronize_session=False)
    )
    return None if claimed is None else attacked_image_columns(claimed)


async def made_for_event(session: AsyncSession, event_id: str) -> int:
    """How many stock images were made for the event so far, served or not: its preparation's progress."""
    count = await session.scalar(select(func.count(StockImageRecord.id)).where(StockImageRecord.event_id == event_id))
    return int(count or 0)


async def unclaimed(session: AsyncSession, job: ImageJob) -> int:
    count = await session.scalar(
        select(func.count(StockImageRecord.id)).where(
            StockImageRecord.stock_key == stock_key(job),
            StockImageRecord.claimed_at.is_(None),
            StockImageRecord.fixed.is_(False),
        )
    )
    return int(count or 0)
