"""A request's round, from the game's side: one read of the model service's catalogue per request, and the round
and its answer committed before the operation returns."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.db.session import open_database
from app.db.tables import AnswerRecord, RoundRecord
from app.errors import Invalid
from app.game import play
from app.game.catalogue import Catalogue
from app.ml.service.contracts import OpponentInfo
from tests.conftest import make_settings
from tests.game.test_rounds import CLASSES, KnownImages

pytestmark = pytest.mark.anyio


class CountedReads(KnownImages):
    """KnownImages that counts how often the catalogue and the opponents are read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = {"attack_catalog": 0, "opponent_names": 0, "opponent_info": 0}

    def attack_catalog(self) -> list[dict[str, object]]:
        self.reads["attack_catalog"] += 1
        return super().attack_catalog()

    def opponent_names(self) -> list[str]:
        self.reads["opponent_names"] += 1
        return super().opponent_names()

    def opponent_info(self, name: str) -> OpponentInfo:
        self.reads["opponent_info"] += 1
        return super().opponent_info(name)


async def test_a_round_reads_the_catalogue_once_and_is_committed_with_its_answer(database_url: str) -> None:
    settings = make_settings(database_url, opponent="fashion-cnn", attack="square")
    database = open_database(database_url)
    service = CountedReads()
    accepted: list[play.RoundChoice] = []
    try:
        async with database.sessionmaker() as session:
            player, _token, event = await play.join(session, nickname="once")
            assert event is None
            choice = play.RoundChoice(opponent="fashion-forest")
            view = await play.new_round(
                session, Catalogue(service), player=player, choice=choice, settings=settings, accepted=accepted.append
            )
            assert accepted == [choice] and view.record.attack == "square" and view.reveal is None
            assert service.reads == {"attack_catalog": 1, "opponent_names": 1, "opponent_info": 1}

            service.reads = dict.fromkeys(service.reads, 0)
            truth = CLASSES[view.record.true_label]
            answered = await play.answer(
                session, Catalogue(service), player=player, round_id=view.record.id, choice=truth
            )
            assert answered.reveal is not None and answered.reveal.correct
            assert service.reads == {"attack_catalog": 1, "opponent_names": 0, "opponent_info": 1}
        async with database.sessionmaker() as other:  # committed: another session sees both
            assert await other.scalar(select(func.count()).select_from(RoundRecord)) == 1
            assert await other.scalar(select(func.count()).select_from(AnswerRecord)) == 1
    finally:
        await database.dispose()


async def test_a_refused_choice_is_never_accepted(database_url: str) -> None:
    settings = make_settings(database_url, opponent="fashion-cnn")
    database = open_database(database_url)
    accepted: list[Any] = []
    try:
        async with database.sessionmaker() as session:
            player, _token, _event = await play.join(session, nickname="refused")
            for choice in (play.RoundChoice(attack="death-ray"), play.RoundChoice(task="telepathy")):
                with pytest.raises(Invalid):
                    await play.new_round(
                        session,
                        Catalogue(KnownImages()),
                        player=player,
                        choice=choice,
                        settings=settings,
                        accepted=accepted.append,
                    )
            assert accepted == []
    finally:
        await database.dispose()


class RecordedJobs(KnownImages):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[Any] = []

    async def generate(self, job: Any) -> Any:
        self.asked.append(job)
        return await super().generate(job)


async def test_a_players_round_asks_the_model_service_in_that_players_name(database_url: str) -> None:
    """The model service shares its compute out per client key (app/ml/service/admission.py): a round's job must
    carry the player's id, or every player would count as one client."""
    settings = make_settings(database_url, opponent="fashion-cnn", attack="square")
    database = open_database(database_url)
    service = RecordedJobs()
    try:
        async with database.sessionmaker() as session:
            player, _token, _event = await play.join(session, nickname="named")
            await play.new_round(
                session, Catalogue(service), player=player, choice=play.RoundChoice(), settings=settings
            )
        assert [job.client for job in service.asked] == [player.id]
    finally:
        await database.dispose()
