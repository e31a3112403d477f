"""Classifications and natural-photo rounds wait for the cloak worker in a bounded line: one more than the bound
answers 503 with Retry-After at once, and the others are served once the worker is free (issue 16: they queued
without a bound). Through the app factory, with a cloak service whose one worker is busy until the test frees it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.db import migrate
from app.main import create_app
from app.ml.service.contracts import ImageJob, ImageResult, OpponentInfo
from tests.conftest import make_settings
from tests.fakes import FakeModelService

pytestmark = pytest.mark.anyio
BOUND = 2


class SlowWorker:
    """The cloak service's one worker, busy until ``free`` is set."""

    available = True
    max_bytes = 100_000

    def __init__(self) -> None:
        self.free = asyncio.Event()

    async def classify(self, data: bytes, model: str | None = None) -> dict[str, Any]:
        await self.free.wait()
        return {"model": "efficientnet-lite0", "top5": []}

    async def new_natural_round(self) -> str:
        await self.free.wait()
        return "token"

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def no_rounds(job: ImageJob) -> ImageResult:
    raise AssertionError("these tests ask the game's model service for nothing")


def queued_app(tmp_path: Path, worker: SlowWorker) -> FastAPI:
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    migrate.upgrade(url)
    info = OpponentInfo("fashion-cnn", "fashion", tuple(f"class {i}" for i in range(10)), (0,), 0.05, 0.9)
    settings = make_settings(url, cloak_queue_size=BOUND)
    return create_app(settings, model_service=FakeModelService(info, no_rounds), cloak_service=worker)  # type: ignore[arg-type]


async def line_up(requests: list[Any], worker: SlowWorker) -> list[httpx.Response]:
    """Start every request; once the extra one has been answered, free the worker for the rest."""
    tasks = [asyncio.create_task(request()) for request in requests]
    try:
        done, _ = await asyncio.wait(tasks, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    finally:
        worker.free.set()
    replies = [await task for task in tasks]
    assert len(done) == 1, "only the request beyond the bound is answered while the worker is busy"
    return replies


async def test_classifications_beyond_the_bound_answer_503(tmp_path: Path) -> None:
    worker = SlowWorker()
    app = queued_app(tmp_path, worker)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):

        async def classify() -> httpx.Response:
            return await client.post("/api/v1/classify", files={"file": ("x.png", b"x", "image/png")})

        replies = await line_up([classify] * (BOUND + 1), worker)
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200] * BOUND + [503]
    busy = next(reply for reply in replies if reply.status_code == 503)
    assert int(busy.headers["Retry-After"]) >= 1 and "waiting" in busy.json()["detail"]


async def test_natural_rounds_beyond_the_bound_answer_503(tmp_path: Path) -> None:
    worker = SlowWorker()
    app = queued_app(tmp_path, worker)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        page = await client.get("/natural")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None

        async def new_round() -> httpx.Response:
            return await client.post("/natural/rounds", data={"csrf_token": token.group(1)})

        replies = await line_up([new_round] * (BOUND + 1), worker)
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [303] * BOUND + [503]
    busy = next(reply for reply in replies if reply.status_code == 503)
    assert int(busy.headers["Retry-After"]) >= 1
