"""Two `arena serve` processes on loopback against one PostgreSQL database, as behind a load balancer: a phone on
one process, the big screen and another phone's stream on the other. What happens on the first reaches the
second's streams (through LISTEN/NOTIFY), within a bounded time."""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import empty_tables
from tests.load.test_workshop_load import load_benchmark

ANSWERS = re.compile(r'data-answers="(\d+)"')
WITHIN_S = 10.0  # generous for two loaded cores; on a quiet machine it is tens of milliseconds


async def sse_events(client: httpx.AsyncClient, path: str) -> AsyncIterator[tuple[str, str]]:
    """(event name, data) of a server-sent event stream, one pair per data line."""
    async with client.stream("GET", path, timeout=None) as response:
        response.raise_for_status()
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                yield name, line[6:]


async def first(events: AsyncIterator[tuple[str, str]], wanted: str, matching: str = "") -> str:
    async for name, data in events:
        if name == wanted and matching in data:
            return data
    raise AssertionError(f"the stream ended before a {wanted} event")


async def screen_answers(events: AsyncIterator[tuple[str, str]], at_least: int) -> None:
    async for name, data in events:
        match = ANSWERS.search(data)
        if name == "tally" and match and int(match.group(1)) >= at_least:
            return
    raise AssertionError("the screen's stream ended before the answer showed")


async def phone_here_screen_there(phones_base: str, screen_base: str) -> None:
    async with (
        httpx.AsyncClient(base_url=phones_base, timeout=60) as phones,
        httpx.AsyncClient(base_url=screen_base, timeout=60) as screens,
    ):
        created = await phones.post("/api/v1/events", json={"name": "Two", "eps_min": 4 / 255, "eps_max": 12 / 255})
        created.raise_for_status()
        event = created.json()
        code, host = event["code"], {"Authorization": f"Bearer {event['host_token']}"}
        screen = sse_events(screens, f"/events/{code}/stream?role=screen")
        await screen_answers(screen, 0)
        waiting_phone = sse_events(screens, f"/events/{code}/stream?role=player")
        before = await first(waiting_phone, "status")

        (await phones.post(f"/api/v1/events/{code}/start", headers=host)).raise_for_status()
        started = await asyncio.wait_for(first(waiting_phone, "status"), WITHIN_S)
        assert started != before, "the phone on the other process heard the host start the event"

        joined = await phones.post("/api/v1/players", json={"nickname": "ada", "event_code": code})
        assert joined.status_code == 201, joined.text
        player = {"Authorization": f"Bearer {joined.json()['token']}"}
        round_ = await phones.post("/api/v1/rounds", headers=player)
        assert round_.status_code == 201, round_.text
        body = round_.json()
        answered = await phones.post(body["answer_url"], json={"choice": body["choices"][0]}, headers=player)
        assert answered.status_code == 200, answered.text
        acked = time.monotonic()
        await asyncio.wait_for(screen_answers(screen, 1), WITHIN_S)
        assert time.monotonic() - acked < WITHIN_S
        await screen.aclose()
        await waiting_phone.aclose()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_phone_on_one_web_process_reaches_the_screen_on_another(postgres_url: str) -> None:
    bench = load_benchmark()
    empty_tables(postgres_url)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench.running_server(Path(tmp), database_url=postgres_url, migrate=False, name="phones") as phones_base,  # type: ignore[attr-defined]
        bench.running_server(Path(tmp), database_url=postgres_url, migrate=False, name="screen") as screen_base,  # type: ignore[attr-defined]
    ):
        asyncio.run(asyncio.wait_for(phone_here_screen_there(str(phones_base), str(screen_base)), 120))
