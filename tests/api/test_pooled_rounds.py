"""Rounds served from the ready-round pool, through the real app and model service (SQLite): the round stores the
pooled image's own index and seed, so it regenerates bit for bit like a round made on demand, and each pooled
image is shown to one round only."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.game.pool import ReadyRoundPool
from app.images import to_png
from app.main import create_app
from tests.conftest import empty_tables, make_settings
from tests.helpers import ADMIN, auth, new_player
from tests.stats.test_reproduce_round import job_from_record, regenerate, stored_round


@pytest.fixture
def pooled_client(sqlite_url: str) -> Iterator[TestClient]:
    empty_tables(sqlite_url)
    with TestClient(create_app(make_settings(sqlite_url, ready_rounds=2)), base_url="http://testserver") as client:
        yield client
    empty_tables(sqlite_url)


def wait_for_ready(pool: ReadyRoundPool, client: TestClient, count: int) -> None:
    """The pool prefills in the background; the limit only keeps a broken pool from hanging the test."""
    deadline = time.monotonic() + 120
    while client.get("/healthz", headers=ADMIN).json()["model"]["pool"]["made"] < count:
        if time.monotonic() > deadline:
            pool_health = client.get("/healthz", headers=ADMIN).json()["model"]["pool"]
            pytest.fail(f"the pool made fewer than {count} rounds: {pool_health}")
        time.sleep(0.1)


@pytest.mark.slow
def test_a_pooled_round_stores_its_own_image_and_regenerates_exactly(pooled_client: TestClient) -> None:
    pool = pooled_client.app.state.model_service
    assert isinstance(pool, ReadyRoundPool)
    wait_for_ready(pool, pooled_client, 2)  # the default plan's first step, before anyone asked
    # Two players at the first step: one player's second round would follow their answer up or down the staircase,
    # past the step the pool filled (and a player has only one pending round at a time).
    players = [new_player(pooled_client, name) for name in ("early", "earlier")]
    rounds = [pooled_client.post("/api/v1/rounds", headers=auth(player)) for player in players]
    assert [r.status_code for r in rounds] == [201, 201]
    assert pooled_client.get("/healthz", headers=ADMIN).json()["model"]["pool"]["hits"] == 2
    records = [stored_round(pooled_client, r.json()["round_id"]) for r in rounds]
    assert records[0].adversarial_png != records[1].adversarial_png, "each pooled image is used once"
    for created, record in zip(rounds, records, strict=True):
        assert pooled_client.get(created.json()["image_url"]).content == record.adversarial_png
        (again,) = regenerate(pooled_client, job_from_record(record))
        assert (again.image_index, again.seed) == (record.image_index, record.seed)
        assert to_png(again.adversarial) == record.adversarial_png, "the stored recipe is the pooled image's"
        assert to_png(again.clean) == record.clean_png
