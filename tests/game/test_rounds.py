"""Round rules against a real database (SQLite and PostgreSQL), with a deterministic image source standing in
for the model service so that the outcome of every answer is known in advance."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from sqlalchemy import func, select

from app.db.session import open_database
from app.db.tables import AnswerRecord, PlayerRecord, RoundRecord
from app.errors import Conflict, Invalid, NotFound
from app.game import players, rounds
from app.ml.service.contracts import ImageJob, ImageResult, OpponentInfo

pytestmark = pytest.mark.anyio
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class KnownImages:
    """Image i has true class i % 10 and the attacked model answers (i + 1) % 10: always fooled."""

    def __init__(self) -> None:
        self.jobs: list[ImageJob] = []

    def opponent_info(self, name: str) -> OpponentInfo:
        return OpponentInfo(
            name=name,
            pack="fashion",
            class_names=CLASSES,
            eligible_indices=(3, 4),
            min_eps=8 / 255,
            clean_accuracy=0.9,
            image_shape=(28, 28),
            differentiable=name != "fashion-forest",
        )

    def opponent_names(self) -> list[str]:
        return ["fashion-cnn", "fashion-forest"]

    def attack_catalog(self) -> list[dict[str, object]]:
        return [
            {"name": "pgd", "threat_model": "white-box", "norm": "linf", "params": []},
            {"name": "pgd-l2", "threat_model": "white-box", "norm": "l2", "params": []},
            {"name": "square", "threat_model": "score", "norm": "linf", "params": []},
            {
                "name": "transfer",
                "threat_model": "transfer",
                "norm": "linf",
                "params": [{"name": "surrogate", "default": "fashion-cnn"}],
            },
        ]

    async def generate(self, job: ImageJob) -> ImageResult:
        self.jobs.append(job)
        clean = np.full((28, 28), 100, dtype=np.uint8)
        shift = int(job.eps * 255)
        probs = [0.0] * 10
        probs[(job.image_index + 1) % 10] = 0.9
        probs[job.image_index % 10] = 0.1
        return ImageResult(
            clean=clean,
            adversarial=clean + shift,
            true_label=job.image_index % 10,
            clean_label=job.image_index % 10,
            clean_confidence=0.99,
            adversarial_label=(job.image_index + 1) % 10,
            adversarial_probs=tuple(probs),
            linf=shift / 255,
            image_index=job.image_index,
            seed=job.seed,
        )


PLAN = rounds.RoundPlan(opponent="fashion-cnn")


async def test_round_lifecycle(database_url: str) -> None:
    database = open_database(database_url)
    source = KnownImages()
    try:
        async with database.sessionmaker() as session:
            player, _ = await players.create_player(session, nickname="rules")
            record = await rounds.start_round(session, player=player, source=source, plan=PLAN)
            await session.commit()
            assert record.image_index in (3, 4) and record.eps == pytest.approx(8 / 255)
            assert source.jobs[0].params == (("random_start", True), ("steps", 20))
            truth = CLASSES[record.true_label]
            _, answer = await rounds.answer_round(
                session, player=player, round_id=record.id, choice=truth, source=source
            )
            await session.commit()
            assert answer.correct and not answer.model_correct
            assert answer.points == 3, "right while the machine is fooled: 1 + 2 bonus"
            assert (player.score, player.streak, player.level) == (3, 1, 1)

            harder = await rounds.start_round(session, player=player, source=source, plan=PLAN)
            assert harder.eps > record.eps and harder.level == 1
            wrong = CLASSES[(harder.true_label + 5) % 10]
            _, miss = await rounds.answer_round(session, player=player, round_id=harder.id, choice=wrong, source=source)
            await session.commit()
            assert not miss.correct and miss.points == 0
            assert (player.score, player.streak, player.best_streak, player.level) == (3, 0, 1, 0)

            with pytest.raises(Conflict):
                await rounds.answer_round(session, player=player, round_id=record.id, choice=truth, source=source)
        async with database.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(AnswerRecord)) == 2
    finally:
        await database.dispose()


async def test_rounds_are_private_and_choices_checked(database_url: str) -> None:
    database = open_database(database_url)
    source = KnownImages()
    try:
        async with database.sessionmaker() as session:
            owner, _ = await players.create_player(session, nickname="owner")
            other, _ = await players.create_player(session, nickname="other")
            record = await rounds.start_round(session, player=owner, source=source, plan=PLAN)
            await session.commit()
            with pytest.raises(NotFound):
                await rounds.player_round(session, player=other, round_id=record.id)
            with pytest.raises(NotFound):
                await rounds.answer_round(session, player=owner, round_id="missing", choice="Bag", source=source)
            with pytest.raises(Invalid):
                await rounds.answer_round(session, player=owner, round_id=record.id, choice="bag", source=source)
    finally:
        await database.dispose()


async def test_simultaneous_answers_to_one_round_count_once(database_url: str) -> None:
    database = open_database(database_url)
    source = KnownImages()
    try:
        async with database.sessionmaker() as session:
            player, _ = await players.create_player(session, nickname="racer")
            record = await rounds.start_round(session, player=player, source=source, plan=PLAN)
            await session.commit()
            player_id, round_id, truth = player.id, record.id, CLASSES[record.true_label]

        async def answer_once() -> str:
            async with database.sessionmaker() as session:
                me = await session.get(PlayerRecord, player_id)
                try:
                    await rounds.answer_round(session, player=me, round_id=round_id, choice=truth, source=source)
                    await session.commit()
                    return "ok"
                except Conflict:
                    return "conflict"

        outcomes = await asyncio.gather(*(answer_once() for _ in range(4)))
        assert sorted(outcomes) == ["conflict", "conflict", "conflict", "ok"]
        async with database.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(AnswerRecord)) == 1
            me = await session.get(PlayerRecord, player_id)
            assert me.score == 3, "the score counts the one accepted answer"
            assert await session.scalar(select(func.count()).select_from(RoundRecord)) == 1
    finally:
        await database.dispose()


async def test_rounds_store_norm_budget_surrogate_and_the_results_image(database_url: str) -> None:
    database = open_database(database_url)
    source = KnownImages()
    try:
        async with database.sessionmaker() as session:
            player, _ = await players.create_player(session, nickname="norms")
            other, _ = await players.create_player(session, nickname="transfers")  # one pending round per player
            l2 = await rounds.start_round(
                session, player=player, source=source, plan=rounds.RoundPlan(opponent="fashion-cnn", attack="pgd-l2")
            )
            transfer = await rounds.start_round(
                session,
                player=other,
                source=source,
                plan=rounds.RoundPlan(opponent="fashion-forest", attack="transfer"),
            )
            await session.commit()
            assert (l2.norm, l2.eps) == ("l2", pytest.approx(8 / 255 * 14, abs=1e-4))
            assert (l2.image_index, l2.seed) == (source.jobs[0].image_index, source.jobs[0].seed)
            assert (transfer.norm, transfer.surrogate, transfer.condition) == ("linf", "fashion-cnn", "adversarial")
    finally:
        await database.dispose()


def test_flash_timing_is_flagged_when_missing_or_off_by_more_than_a_frame() -> None:
    assert rounds.timing_flag(None, None) is None and rounds.timing_flag(None, 120.0) is None
    assert rounds.timing_flag(100, 100.0) is False and rounds.timing_flag(100, 116.0) is False
    assert rounds.timing_flag(100, 83.4) is False and rounds.timing_flag(100, 83.2) is True
    assert rounds.timing_flag(100, 117.0) is True and rounds.timing_flag(100, None) is True
