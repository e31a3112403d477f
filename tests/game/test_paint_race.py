"""Two strokes of one painting answered at the same time: one is stored, the other is refused (409), never both
written on top of the same revision (PaintingRecord.revision is the mapper's version counter)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from app.db.paint_tables import PaintingRecord, PaintStrokeRecord
from app.db.session import open_database
from app.db.tables import PlayerRecord
from app.errors import Conflict
from app.game import paint_rounds, players
from app.images import to_png
from app.ml.service.classify_contracts import ClassifyJob, ClassifyResult

pytestmark = pytest.mark.anyio


class Gate:
    """A model service whose answers wait until both strokes are being answered."""

    def __init__(self) -> None:
        self.arrived = 0
        self.both = asyncio.Event()

    def opponent_info(self, name: str) -> Any:
        return type("Info", (), {"class_names": tuple(str(i) for i in range(10))})()

    async def classify(self, job: ClassifyJob) -> ClassifyResult:
        self.arrived += 1
        if self.arrived == 2:
            self.both.set()
        await self.both.wait()
        return ClassifyResult(label=9, probability=0.9, labels=(9, 0, 1), probabilities=(0.9, 0.05, 0.05))

    async def smallest_attack(self, job: Any) -> Any:
        raise AssertionError("not asked")


async def test_one_of_two_simultaneous_strokes_is_refused(database_url: str) -> None:
    database = open_database(database_url)
    try:
        async with database.sessionmaker() as session:
            player, _token = await players.create_player(session, nickname="racer")
            clean = to_png(np.full((28, 28), 100, np.uint8))
            session.add(
                PaintingRecord(
                    id="p" * 32, player_id=player.id, pack="fashion", opponent="fashion-cnn", image_index=0,
                    true_label=9, tool="brush", budget=32, status="painting", stroke_count=0,
                    model_label=9, model_probs=[0.0] * 9 + [1.0], clean_probs=[0.0] * 9 + [1.0],
                    pixels=0, l2=0.0, linf=0.0, points=0, clean_png=clean, painted_png=clean,
                )
            )  # fmt: skip
            await session.commit()
            player_id = player.id
        service = Gate()

        async def one(x: int) -> str:
            async with database.sessionmaker() as session:
                player = await session.get(PlayerRecord, player_id)
                assert player is not None
                stroke = {"tool": "brush", "points": [[x, 0]], "amount": 8}
                try:
                    await paint_rounds.add_stroke(
                        session,
                        service,
                        player=player,
                        painting_id="p" * 32,
                        stroke=stroke,  # type: ignore[arg-type]
                    )
                except Conflict:
                    return "refused"
                return "stored"

        outcomes = await asyncio.wait_for(asyncio.gather(one(1), one(2)), 30)
        assert sorted(outcomes) == ["refused", "stored"]
        async with database.sessionmaker() as session:
            record = await session.scalar(select(PaintingRecord))
            assert record is not None and record.stroke_count == 1
            stored = list(await session.scalars(select(PaintStrokeRecord)))
            assert [row.number for row in stored] == [1]
    finally:
        await database.dispose()
