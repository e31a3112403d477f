"""Classifications and natural-photo rounds wait for the cloak worker in a bounded line: one more than the bound
answers 503 with Retry-After at once, and the others are served once the worker is free."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.sessions import SessionMiddleware

from app.api.cloak import UploadQueue
from app.api.cloak import router as api_cloak_router
from app.db.session import open_database
from app.errors import ArenaError
from app.web.natural import router as web_natural_router
from app.web.templating import build_templates

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


def queued_app(tmp_path: Path, worker: SlowWorker) -> FastAPI:
    app = FastAPI()
    app.state.cloak = worker
    app.state.upload_queue = UploadQueue(BOUND)
    app.state.templates = build_templates()
    app.state.database = open_database(f"sqlite:///{tmp_path / 'empty.db'}")  # the pages' header asks for one
    app.add_middleware(SessionMiddleware, secret_key="test-secret-key-not-for-production")
    app.include_router(api_cloak_router)
    app.include_router(web_natural_router)

    @app.exception_handler(ArenaError)
    async def arena_error(_request: Request, error: ArenaError) -> JSONResponse:
        headers = {"Retry-After": str(error.retry_after_s)} if hasattr(error, "retry_after_s") else {}
        return JSONResponse({"detail": error.message}, status_code=error.status_code, headers=headers)

    return app


async def line_up(requests: list[Any], worker: SlowWorker) -> list[httpx.Response]:
    """Start every request; once the extra one has been answered, free the worker for the rest."""
    tasks = [asyncio.create_task(request()) for request in requests]
    done, _ = await asyncio.wait(tasks, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1, "only the request beyond the bound is answered while the worker is busy"
    worker.free.set()
    return [await task for task in tasks]


async def test_classifications_beyond_the_bound_answer_503(tmp_path: Path) -> None:
    worker = SlowWorker()
    transport = httpx.ASGITransport(app=queued_app(tmp_path, worker))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def classify() -> httpx.Response:
            return await client.post("/api/v1/classify", files={"file": ("x.png", b"x", "image/png")})

        replies = await line_up([classify] * (BOUND + 1), worker)
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200] * BOUND + [503]
    busy = next(reply for reply in replies if reply.status_code == 503)
    assert int(busy.headers["Retry-After"]) >= 1 and "waiting" in busy.json()["detail"]


async def test_natural_rounds_beyond_the_bound_answer_503(tmp_path: Path) -> None:
    worker = SlowWorker()
    transport = httpx.ASGITransport(app=queued_app(tmp_path, worker))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
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
