"""Who may see why the machine failed on a round: its own player, once answered (404 otherwise, like the image)."""

from __future__ import annotations

import pytest

from app import messages
from app.db.session import open_database
from app.errors import NotFound
from app.game import players, rounds
from app.game.explain_access import explainable_round
from tests.game.test_rounds import CLASSES, PLAN, KnownImages

pytestmark = pytest.mark.anyio


async def test_only_the_player_sees_an_answered_round(database_url: str) -> None:
    database = open_database(database_url)
    source = KnownImages()
    try:
        async with database.sessionmaker() as session:
            owner, _ = await players.create_player(session, nickname="owner")
            other, _ = await players.create_player(session, nickname="other")
            record = await rounds.start_round(session, player=owner, source=source, plan=PLAN)
            await session.commit()
            with pytest.raises(NotFound) as not_yet:
                await explainable_round(session, player=owner, round_id=record.id)
            assert not_yet.value.message == messages.REVEAL_NOT_READY
            choice = CLASSES[record.true_label]
            await rounds.answer_round(session, player=owner, round_id=record.id, choice=choice, source=source)
            await session.commit()
            assert (await explainable_round(session, player=owner, round_id=record.id)).id == record.id
            with pytest.raises(NotFound):
                await explainable_round(session, player=other, round_id=record.id)
    finally:
        await database.dispose()
