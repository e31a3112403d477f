"""Issue 16, timing tells: a black-box attack stops at its first fooling query, so a quick reply to a round request
said that the machine was fooled. Through HTTP and the app factory, with a model service whose score-based attack
takes FULL_BUDGET_S when it spends its whole query budget (the machine not fooled) and no time when it fools at once.

The two replies' times are compared with each other, not with a clock: the fooling round must not come back in less
than half the time of the round that spent its budget (a margin that a loaded machine's overhead does not reach)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from app.ml.service.contracts import ImageJob, ImageResult, OpponentInfo, freeze_catalog
from tests.conftest import make_settings
from tests.fakes import FakeModelService
from tests.helpers import auth, new_player

FULL_BUDGET_S = 1.0
BUDGET = 500
# An opponent of its own, so that no other test's rounds of the same attack share what the server learnt of its time.
OPPONENT = "timing-probe"
SQUARE = freeze_catalog([{"name": "square", "threat_model": "score", "norm": "linf", "params": []}])


class ScoreAttackService(FakeModelService):
    """Answers every round with a Square-like attack: fooled after 40 queries at once while ``fooling``, else after
    spending the whole budget, which takes FULL_BUDGET_S."""

    def __init__(self) -> None:
        info = OpponentInfo(OPPONENT, "fashion", tuple(f"class {i}" for i in range(10)), (0,), 8 / 255, 0.9)
        super().__init__(info, self.result, catalog=SQUARE)
        self.fooling = False

    def result(self, job: ImageJob) -> ImageResult:
        label = 1 if self.fooling else 0
        probs = tuple(1.0 if i == label else 0.0 for i in range(10))
        pixels = np.zeros((28, 28), dtype=np.uint8)
        return ImageResult(
            clean=pixels,
            adversarial=pixels,
            true_label=0,
            clean_label=0,
            clean_confidence=1.0,
            adversarial_label=label,
            adversarial_probs=probs,
            linf=0.0,
            queries=40 if self.fooling else BUDGET,
            query_budget=BUDGET,
            image_index=job.image_index,
            seed=job.seed,
        )

    async def generate(self, job: ImageJob) -> ImageResult:
        if not self.fooling:
            await asyncio.sleep(FULL_BUDGET_S)
        return await super().generate(job)


def timed_round(client: TestClient, nickname: str) -> tuple[float, dict[str, object]]:
    player = new_player(client, nickname)
    started = time.perf_counter()
    reply = client.post("/api/v1/rounds", headers=auth(player), json={"opponent": OPPONENT, "attack": "square"})
    seconds = time.perf_counter() - started
    assert reply.status_code == 201, reply.text
    return seconds, reply.json()


def test_a_round_that_fools_at_once_is_not_answered_sooner_than_one_that_spends_its_budget(sqlite_url: str) -> None:
    service = ScoreAttackService()
    with TestClient(create_app(make_settings(sqlite_url), model_service=service)) as client:
        held_s, _ = timed_round(client, "patient")
        service.fooling = True
        fooled_s, _ = timed_round(client, "quick")
    assert len(service.jobs) == 2
    assert fooled_s >= 0.5 * held_s, (
        f"the fooling round came back in {fooled_s:.3f} s, the full budget's in {held_s:.3f} s"
    )
