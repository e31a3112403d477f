"""Kill -9 the model service process in the middle of a load run and start it again.

`arena modelsvc` and `arena serve` (with ARENA_MODEL_SERVICE_URL, on PostgreSQL) run as real processes on
loopback; 12 simulated players keep making rounds and answering through the JSON API the whole time. Then:
  * no reply is a 500 and none hangs: during the outage new rounds are 503 with Retry-After (the page retries by
    itself), answers to rounds already made still succeed (they need no model);
  * /healthz reports the outage (503, model state "down") while the model process is gone;
  * the web server is never restarted: within 10 s of the new model process answering its health check, players
    get rounds again and /healthz is back to ok;
  * every answer the server acknowledged (200) is in the database, with the choice the player sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from sqlalchemy import create_engine, select

from app.db.session import sync_url
from app.db.tables import AnswerRecord

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
PLAYERS = 12
RECOVERY_LIMIT_S = 10.0  # the bound, from the restarted model process answering to rounds succeeding


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Log:
    replies: list[tuple[float, str, int, str | None]] = field(default_factory=list)  # time, what, status, Retry-After
    acked: dict[str, str] = field(default_factory=dict)  # round id -> the choice whose answer got a 200
    errors: list[str] = field(default_factory=list)  # transport errors and timeouts: a hang or a dropped reply

    def note(self, what: str, response: httpx.Response) -> None:
        self.replies.append((time.monotonic(), what, response.status_code, response.headers.get("Retry-After")))


async def player(client: httpx.AsyncClient, log: Log, index: int, stop: asyncio.Event) -> None:
    rng = random.Random(index)
    response = await client.post("/api/v1/players", json={"nickname": f"kill{index}"})
    log.note("join", response)
    headers = {"Authorization": f"Bearer {response.json()['token']}"}
    while not stop.is_set():
        response = await client.post("/api/v1/rounds", headers=headers)
        log.note("round", response)
        if response.status_code != 201:
            # The real page waits Retry-After seconds; the test keeps asking twice a second to see recovery early.
            await asyncio.sleep(0.5)
            continue
        created = response.json()
        await asyncio.sleep(rng.uniform(0.1, 0.6))  # looking at the image; the model may die meanwhile
        choice = rng.choice(created["choices"])
        answer = await client.post(created["answer_url"], headers=headers, json={"choice": choice})
        log.note("answer", answer)
        if answer.status_code == 200:
            log.acked[created["round_id"]] = choice


async def until(predicate: object, what: str, limit_s: float) -> float:
    """Poll an async predicate; return when it first held. The limit only stops a broken run from hanging."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await predicate():  # type: ignore[operator]
            return time.monotonic()
        await asyncio.sleep(0.1)
    pytest.fail(f"never happened within {limit_s:.0f} s: {what}")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # empty tables before and after
def test_killing_the_model_process_loses_no_answer_and_recovers_without_a_web_restart(database_url: str) -> None:
    pool_latency = load("pool_latency")
    players_load = load("players_load")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        port = players_load.free_port()
        url, model = stack.enter_context(pool_latency.running_model_service(workdir, port=port))
        base = stack.enter_context(
            players_load.running_server(database_url, workdir, ARENA_MODEL_SERVICE_URL=url, ARENA_READY_ROUNDS="0")
        )
        log = Log()
        marks: dict[str, float] = {}
        health: dict[str, dict[str, object]] = {}

        async def scenario() -> None:
            stop = asyncio.Event()
            timeout = httpx.Timeout(15.0)  # far above any reply here: hitting it means something hung
            async with httpx.AsyncClient(base_url=base, timeout=timeout) as client:

                async def guarded(index: int) -> None:
                    try:
                        await player(client, log, index, stop)
                    except httpx.HTTPError as error:
                        log.errors.append(f"player {index}: {type(error).__name__}: {error!r}")

                async def rounds_since(moment: float, count: int) -> bool:
                    return (
                        sum(1 for t, what, status, _ in log.replies if what == "round" and status == 201 and t > moment)
                        >= count
                    )

                async def model_state(state: str, status: int) -> bool:
                    response = await client.get("/healthz")
                    health[state] = response.json()
                    return response.status_code == status and response.json()["model"].get("state") == state

                players = [asyncio.create_task(guarded(i)) for i in range(PLAYERS)]
                await until(lambda: rounds_since(0.0, 2 * PLAYERS), "players making rounds before the kill", 60)
                marks["kill"] = time.monotonic()
                model.kill()  # SIGKILL: no goodbye, in-flight requests cut off
                await asyncio.to_thread(model.wait)
                marks["down"] = await until(lambda: model_state("down", 503), "/healthz reports the outage", 15)
                await asyncio.sleep(2.0)  # players keep playing into the outage
                marks["restart"] = time.monotonic()
                restarted = pool_latency.running_model_service(workdir, port=port)
                await asyncio.to_thread(stack.enter_context, restarted)  # returns once /v1/health is 200
                marks["ready"] = time.monotonic()
                marks["back"] = await until(lambda: rounds_since(marks["ready"], PLAYERS), "rounds again", 30)
                marks["healthy"] = await until(lambda: model_state("up", 200), "/healthz ok again", 30)
                await asyncio.sleep(1.0)
                stop.set()
                await asyncio.wait_for(asyncio.gather(*players), 30)

        asyncio.run(scenario())

    print({k: round(v - marks["kill"], 2) for k, v in marks.items()})
    assert log.errors == [], "no request may hang or be dropped by the web server"
    statuses = {(what, status) for _, what, status, _ in log.replies}
    assert all(status < 500 or status == 503 for _, status in statuses), statuses
    unavailable = [(t, what, retry) for t, what, status, retry in log.replies if status == 503]
    assert unavailable, "new rounds during the outage were refused"
    assert all(retry is not None and int(retry) > 0 for _, _, retry in unavailable), "every 503 says Retry-After"
    assert all(marks["kill"] <= t for t, _, _ in unavailable), "no 503 before the kill"
    assert all(what == "round" for _, what, _ in unavailable), "answers need no model and never failed"
    assert health["down"]["status"] == "degraded" and health["down"]["model"]["ok"] is False
    assert "arena modelsvc" in str(health["down"]["model"]["last_error"])
    assert health["up"]["status"] == "ok"
    assert marks["back"] - marks["ready"] <= RECOVERY_LIMIT_S, marks
    answers_after = [
        t for t, what, status, _ in log.replies if what == "answer" and status == 200 and t > marks["back"]
    ]
    assert answers_after, "players answered rounds made after the recovery"

    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            stored = dict(conn.execute(select(AnswerRecord.round_id, AnswerRecord.choice)).all())
    finally:
        engine.dispose()
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert len(log.acked) >= 3 * PLAYERS
    missing = [round_id for round_id in log.acked if round_id not in stored]
    assert missing == [], f"{len(missing)} acknowledged answers are not in the database"
    assert all(classes[stored[round_id]] == choice for round_id, choice in log.acked.items())
