"""The ready-round pool around a fake model service: used once, expires, learns the keys in demand (and the
staircase steps around them), never starts background work while a player waits, and survives an outage."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import numpy as np
import pytest

from app import messages
from app.config import Settings
from app.errors import ServiceUnavailable
from app.game import rounds
from app.game.difficulty import Staircase
from app.game.pool import ReadyRoundPool, pool_key, staircase_neighbours, starting_jobs, with_ready_round_pool
from app.ml.service.contracts import ImageJob, ImageResult, OpponentInfo
from tests.fakes import FakeModelService

pytestmark = pytest.mark.anyio
PARAMS = ImageJob.freeze_params({"steps": 20, "random_start": True})
INFO = OpponentInfo(
    name="toy",
    pack="fashion",
    class_names=tuple("abcdefghij"),
    eligible_indices=tuple(range(100, 200)),
    min_eps=8 / 255,
    clean_accuracy=0.9,
    image_shape=(28, 28),
)
LEVELS = Staircase.from_min_eps(INFO.min_eps).levels


def job(eps: float = LEVELS[0], *, index: int = 100, seed: int = 1, any_image: bool = True) -> ImageJob:
    return ImageJob("toy", "pgd", PARAMS, index, eps, seed, any_image=any_image)


def on_demand(job: ImageJob) -> bool:
    return job.seed < 1000  # the tests' own jobs; the pool draws 62-bit seeds


def index_image(job: ImageJob) -> ImageResult:
    """An image that encodes the job's index, under an index and seed of its own."""
    image = np.full((28, 28), job.image_index % 256, dtype=np.uint8)
    return ImageResult(image, image, 1, 1, 0.9, 2, (0.1,) * 10, job.eps, image_index=-7, seed=-7)


def fake_service() -> FakeModelService:
    """When its gate is set, on-demand jobs wait for it."""
    return FakeModelService(INFO, index_image, waits=on_demand)


def background_while_player_waited(service: FakeModelService) -> int:
    """The jobs made ahead that reached the service while a player's own job was still running."""
    arrivals = zip(service.jobs, service.running_at_arrival, strict=True)
    return sum(1 for job, running in arrivals if not on_demand(job) and any(map(on_demand, running)))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def settle(pool: ReadyRoundPool, service: FakeModelService) -> None:
    """Let the background refill run until it has nothing left to do (no timing involved: it is all fakes)."""
    for _ in range(200):
        before = len(service.jobs)
        pool._wake.set()
        for _ in range(20):
            await asyncio.sleep(0)
        if len(service.jobs) == before and pool._idle.is_set():
            return
    pytest.fail("the pool never settled")


def make_pool(service: FakeModelService, clock: Clock, **options: Any) -> ReadyRoundPool:
    options.setdefault("size", 2)
    options.setdefault("ttl_s", 60.0)
    options.setdefault("neighbours", staircase_neighbours)
    return ReadyRoundPool(service, clock=clock, **options)  # type: ignore[arg-type]


async def test_a_ready_round_is_used_once_and_names_its_own_image() -> None:
    service, clock = fake_service(), Clock()
    pool = make_pool(service, clock)
    await pool.start()
    try:
        await pool.generate(job())  # a miss: made on demand, and the key is now in demand
        assert pool.stats == {"hits": 0, "misses": 1, "made": 0, "expired": 0, "failed": 0}
        await settle(pool, service)
        assert pool.ready_count(job()) == 2
        made = {(c.image_index, c.seed) for c in service.jobs if c.seed >= 1000 and c.eps == LEVELS[0]}
        served = [await pool.generate(job(seed=k)) for k in (2, 3)]
        assert pool.stats["hits"] == 2 and pool.ready_count(job()) == 0
        pairs = {(r.image_index, r.seed) for r in served}
        assert len(pairs) == 2 and pairs <= made, "each ready result is served once, with its own index and seed"
        assert all(
            r.image_index in INFO.eligible_indices and r.adversarial[0, 0] == r.image_index % 256 for r in served
        )
        assert len([c for c in service.jobs if c.seed < 1000]) == 1, "the two hits never reached the service"
    finally:
        await pool.stop()


async def test_a_job_that_pins_its_image_is_never_answered_from_the_pool() -> None:
    service, clock = fake_service(), Clock()
    pool = make_pool(service, clock)
    await pool.start()
    try:
        await pool.generate(job())
        await settle(pool, service)
        ready = pool.ready_count(job())
        result = await pool.generate(job(index=123, seed=5, any_image=False))
        assert service.jobs[-1] == job(index=123, seed=5, any_image=False) and result.adversarial[0, 0] == 123
        assert pool.ready_count(job()) == ready and pool.stats["hits"] == 0
    finally:
        await pool.stop()


async def test_ready_rounds_expire_unused() -> None:
    service, clock = fake_service(), Clock()
    pool = make_pool(service, clock, ttl_s=30.0, demand_window_s=1e9)
    await pool.start()
    try:
        await pool.generate(job())
        await settle(pool, service)
        assert pool.ready_count(job()) == 2
        clock.now += 31
        assert pool.ready_count(job()) == 0
        hits = pool.stats["hits"]
        await pool.generate(job(seed=9))
        assert pool.stats["hits"] == hits and pool.stats["expired"] >= 2, "an expired round is never served"
        await settle(pool, service)
        assert pool.ready_count(job()) == 2, "and fresh ones replace it"
    finally:
        await pool.stop()


async def test_demand_is_learnt_with_the_staircase_steps_around_it_and_forgotten() -> None:
    service, clock = fake_service(), Clock()
    plan = rounds.RoundPlan("toy")
    pool = make_pool(service, clock, ttl_s=1000.0, demand_window_s=120.0, prefill=starting_jobs(plan))
    await pool.start()
    try:
        await settle(pool, service)
        start = pool_key(job(LEVELS[0]))
        assert pool.ready_count(start) == 2, "the first step of the default plan is ready before anyone asks"
        assert {pool_key(c) for c in service.jobs} == {start}
        await pool.generate(job(LEVELS[3]))
        await settle(pool, service)
        for step in (2, 3, 4):
            assert pool.ready_count(job(LEVELS[step])) == 2, f"step {step}"
        assert pool.ready_count(job(LEVELS[5])) == 0 and pool.ready_count(job(LEVELS[1])) == 0
        off_staircase = job(0.123)
        await pool.generate(off_staircase)  # an event's own budget: learnt, without neighbours
        await settle(pool, service)
        assert pool.ready_count(off_staircase) == 2
        clock.now += 121
        for key in (job(LEVELS[3]), off_staircase):
            await pool.generate(key)  # a hit: uses one up
        calls = len(service.jobs)
        clock.now += 121  # nobody has asked for these for longer than the demand window
        await settle(pool, service)
        asked = {pool_key(c) for c in service.jobs[calls:]}
        assert asked <= {start}, "only the pinned first step is still kept full"
    finally:
        await pool.stop()


async def test_background_work_waits_while_a_player_waits() -> None:
    service, clock = fake_service(), Clock()
    pool = make_pool(service, clock, size=8, chunk=3)
    await pool.start()
    try:
        service.gate = asyncio.Event()
        waiting = asyncio.create_task(pool.generate(job(LEVELS[2])))
        for _ in range(50):
            pool._wake.set()
            await asyncio.sleep(0)
        assert [c for c in service.jobs if c.seed >= 1000] == [], "nothing made ahead while the player waits"
        service.gate.set()
        await waiting
        await settle(pool, service)
        assert background_while_player_waited(service) == 0
        assert pool.ready_count(job(LEVELS[2])) == 8
        # Now players come and go while the pool refills: background chunks start only between them.
        service.gate = asyncio.Event()
        players = [asyncio.create_task(pool.generate(job(LEVELS[2], seed=k))) for k in range(20)]
        misses = [asyncio.create_task(pool.generate(job(LEVELS[6], seed=k))) for k in range(3)]
        for _ in range(50):
            await asyncio.sleep(0)
        assert background_while_player_waited(service) == 0
        service.gate.set()
        await asyncio.gather(*players, *misses)
        await settle(pool, service)
        assert background_while_player_waited(service) == 0
    finally:
        await pool.stop()


async def test_background_chunks_are_small_batches() -> None:
    service, clock = fake_service(), Clock()
    pool = make_pool(service, clock, size=10, chunk=4)
    sizes: list[int] = []
    inner_generate = service.generate
    in_flight = 0

    async def counting(job: ImageJob) -> ImageResult:
        nonlocal in_flight
        in_flight += 1
        sizes.append(in_flight)
        try:
            return await inner_generate(job)
        finally:
            in_flight -= 1

    service.generate = counting  # type: ignore[method-assign]
    await pool.start()
    try:
        await pool.generate(job())
        await settle(pool, service)
        assert pool.ready_count(job()) == 10 and max(sizes) == 4
    finally:
        await pool.stop()


async def test_an_outage_postpones_the_refill_and_players_get_the_service_error() -> None:
    service, clock = fake_service(), Clock()
    pool = make_pool(service, clock, retry_s=0.0)
    await pool.start()
    try:
        service.fail, service.ready = ServiceUnavailable(messages.SERVICE_DOWN), False
        with pytest.raises(ServiceUnavailable):
            await pool.generate(job())
        await settle(pool, service)
        assert pool.stats["failed"] >= 1 and pool.ready_count(job()) == 0
        assert (await pool.health())["pool"]["failed"] >= 1 and not (await pool.health())["ok"]
        service.fail, service.ready = None, True
        await settle(pool, service)
        assert pool.ready_count(job()) == 2, "the refill resumes by itself when the service is back"
    finally:
        await pool.stop()


async def test_everything_but_generate_passes_through() -> None:
    service, clock = fake_service(), Clock()
    pool = make_pool(service, clock)
    asked: list[object] = []

    async def explain(job: object) -> str:
        asked.append(job)
        return "explained"

    service.explain = explain  # type: ignore[attr-defined]
    await pool.start()
    try:
        assert await pool.explain("job") == "explained" and asked == ["job"]  # type: ignore[arg-type]
        assert pool.opponent_info("toy") == INFO and pool.opponent_names() == ["toy"]
        assert pool.attack_catalog()[0]["name"] == "pgd"
        health = await pool.health()
        assert health["ok"] is True and health["pool"]["size"] == 2
    finally:
        await pool.stop()


def test_the_pool_is_a_setting() -> None:
    service = fake_service()
    off = Settings(ready_rounds=0, environment="test", secret_key="x" * 32)  # type: ignore[arg-type]
    assert with_ready_round_pool(service, off) is service  # type: ignore[arg-type]
    on = Settings(ready_rounds=3, ready_round_ttl_s=45, environment="test", secret_key="x" * 32)  # type: ignore[arg-type]
    pool = with_ready_round_pool(service, on)  # type: ignore[arg-type]
    assert isinstance(pool, ReadyRoundPool) and pool.size == 3 and pool.ttl_s == 45
    with pytest.raises(ValueError):
        ReadyRoundPool(service, size=0, ttl_s=10)  # type: ignore[arg-type]


def test_the_pool_makes_its_rounds_in_no_players_name() -> None:
    """Refills are the server's own work: a player's key on them would count against that player's share."""
    asked = dataclasses.replace(job(LEVELS[0]), client="player-1")
    assert pool_key(asked).client == "" and pool_key(asked) == pool_key(job(LEVELS[0]))
