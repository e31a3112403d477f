"""Issue 16: nothing limited the cost of what a round asks for, so a flood of dear rounds (HopSkipJump against
fashion-defgan, seconds of compute each) held the one model worker and every other player waited behind it.

Through HTTP and the real in-process model service: players from one address ask for dear rounds while the worker
is busy with the first of them, then a player from another address asks for a default round. The worker's compute
step is replaced by a fake that records what it is asked, in order (no torch runs in the jobs), so the assertion is
about the order the worker serves, not about time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator

import httpx
import numpy as np
import pytest

from app.main import create_app
from app.ml.service.contracts import ImageJob, ImageResult
from app.ml.service.in_process import InProcessModelService
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio
FLOOD = 6
DEAR = {"opponent": "fashion-defgan", "attack": "hopskipjump"}
CHEAP = {"opponent": "fashion-cnn", "attack": "pgd"}


class RecordingWorker:
    """Stands in for the service's compute step on its worker thread: records each batch's (opponent, attack) and
    keeps the first batch running until ``release`` is set."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str]]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def compute(self, jobs: list[ImageJob]) -> list[ImageResult]:
        self.batches.append([(job.opponent, job.attack) for job in jobs])
        if not self.started.is_set():
            self.started.set()
            self.release.wait(timeout=30)
        pixels = np.zeros((28, 28), dtype=np.uint8)
        probs = tuple(1.0 if label == 0 else 0.0 for label in range(10))
        return [
            ImageResult(pixels, pixels, 0, 0, 1.0, 0, probs, 0.0, image_index=job.image_index, seed=job.seed)
            for job in jobs
        ]

    def dear_jobs_before_the_cheap_one(self) -> int:
        count = 0
        for batch in self.batches:
            if (CHEAP["opponent"], CHEAP["attack"]) in batch:
                return count
            count += sum(1 for opponent, _ in batch if opponent == DEAR["opponent"])
        raise AssertionError(f"the cheap round never reached the worker: {self.batches}")


@pytest.fixture
def worker() -> Iterator[RecordingWorker]:
    recording = RecordingWorker()
    yield recording
    recording.release.set()  # never leave the worker thread waiting, whatever the test did


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(1000):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting: {what}")


async def new_player(client: httpx.AsyncClient, nickname: str) -> dict[str, str]:
    reply = await client.post("/api/v1/players", json={"nickname": nickname})
    assert reply.status_code == 201, reply.text
    body: dict[str, str] = reply.json()
    return {"Authorization": f"Bearer {body['token']}"}


async def test_a_flood_of_dear_rounds_does_not_hold_the_worker_ahead_of_another_clients_round(
    database_url: str, worker: RecordingWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = InProcessModelService(opponents=["fashion-cnn", "fashion-defgan"], device="cpu", torch_threads=1)
    app = create_app(make_settings(database_url), model_service=service)

    def client_from(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async with app.router.lifespan_context(app), client_from("10.0.0.1") as flood, client_from("10.0.0.2") as honest:
        # The worker-thread step of both the old and the new service: attack a batch of compatible jobs.
        monkeypatch.setattr(service, "_compute", worker.compute)
        flooders = [await new_player(flood, f"flood{i}") for i in range(FLOOD)]
        player = await new_player(honest, "honest")

        def ask(
            client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, str]
        ) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(client.post("/api/v1/rounds", headers=headers, json=body))

        async def queued() -> int:
            return int((await service.health())["queue"])

        first = ask(flood, flooders[0], DEAR)

        async def worker_started() -> bool:
            return worker.started.is_set()

        await until(worker_started, "the first dear round on the worker")
        rest = [ask(flood, headers, DEAR) for headers in flooders[1:]]

        async def flood_settled() -> bool:  # each dear round answered (refused) or waiting for the worker
            return await queued() + sum(task.done() for task in rest) == len(rest)

        await until(flood_settled, "the flood queued or answered")
        before = await queued()
        cheap = ask(honest, player, CHEAP)

        async def cheap_waiting() -> bool:
            return cheap.done() or await queued() == before + 1

        await until(cheap_waiting, "the cheap round queued")
        worker.release.set()
        replies = await asyncio.gather(first, *rest, cheap)
    assert replies[-1].status_code == 201, replies[-1].text
    assert {reply.status_code for reply in replies[:-1]} <= {201, 503}
    # Only the dear round already on the worker may go before the other client's round.
    assert worker.dear_jobs_before_the_cheap_one() <= 1, worker.batches
