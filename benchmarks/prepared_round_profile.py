"""What one prepared round costs, request by request (issue 15): SQL statements, commits, connections taken from the
pool, wall time and CPU time of the web process, for each request a player of a prepared event makes.

The app runs in this process (``create_app`` with the in-process model service, on the PostgreSQL database you
name, migrated first) and is called through httpx's ASGI transport: no sockets and no uvicorn, so the figures are the
app's own cost (routing, dependencies, game rules, SQL, JSON) and not the HTTP server's. One own-pace event with
``--rounds`` rounds for one expected player is created and its stock prepared by the server's background maker;
then one player joins and plays the rounds one after another (POST /api/v1/rounds, GET its image, POST its answer),
each request timed and its statements counted. ``--cprofile N`` also prints the N functions with the most
cumulative time over the whole play (all requests together).

Usage: python benchmarks/prepared_round_profile.py --database-url postgresql://postgres@127.0.0.1:5432/arena_bench
       [--rounds 40] [--cprofile 30]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event as sa_event

sys.path.insert(0, str(Path(__file__).resolve().parent))
from players_load import machine  # noqa: E402

from app.config import Settings  # noqa: E402
from app.db import migrate  # noqa: E402
from app.main import create_app  # noqa: E402

REQUESTS = ("POST /rounds", "GET image", "POST answer")


@dataclass
class Counters:
    """What the database saw during one request."""

    statements: int = 0
    commits: int = 0
    checkouts: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    texts: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.statements = self.commits = self.checkouts = 0
        self.kinds = defaultdict(int)
        self.texts = []


@dataclass
class Sample:
    wall_ms: float
    cpu_ms: float
    statements: int
    commits: int
    checkouts: int
    kinds: dict[str, int]
    texts: list[str]


def watch(engine: Any, counters: Counters) -> None:
    """Count every statement, commit and pool checkout of ``engine`` into ``counters``."""

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        counters.statements += 1
        sql = " ".join(sql.split())
        counters.texts.append(sql)
        words = sql.split(None, 3)
        verb = words[0].upper() if words else "?"
        table = ""
        if verb in ("SELECT", "DELETE") and " FROM " in sql.upper():
            table = sql.upper().split(" FROM ", 1)[1].split(None, 1)[0]
        elif verb in ("INSERT", "UPDATE") and len(words) >= 3:
            table = (words[2] if verb == "INSERT" else words[1]).upper()
        counters.kinds[f"{verb} {table}".strip()] += 1

    def commit(_conn: Any) -> None:
        counters.commits += 1

    def checkout(*_args: Any) -> None:
        counters.checkouts += 1

    sa_event.listen(engine.sync_engine, "before_cursor_execute", statement)
    sa_event.listen(engine.sync_engine, "commit", commit)
    sa_event.listen(engine.sync_engine.pool, "checkout", checkout)


async def timed(samples: dict[str, list[Sample]], counters: Counters, name: str, call: Any) -> httpx.Response:
    counters.reset()
    cpu, wall = time.process_time(), time.perf_counter()
    response: httpx.Response = await call
    samples[name].append(
        Sample(
            wall_ms=(time.perf_counter() - wall) * 1000,
            cpu_ms=(time.process_time() - cpu) * 1000,
            statements=counters.statements,
            commits=counters.commits,
            checkouts=counters.checkouts,
            kinds=dict(counters.kinds),
            texts=list(counters.texts),
        )
    )
    return response


async def prepared_event(client: httpx.AsyncClient, rounds: int, timeout_s: float) -> tuple[str, str]:
    body = {"name": "Profile", "rounds": rounds, "expected_players": 1, "eps_min": 4 / 255, "eps_max": 12 / 255}
    created = (await client.post("/api/v1/events", json=body)).raise_for_status().json()
    deadline = time.monotonic() + timeout_s
    while True:
        state = (await client.get(f"/api/v1/events/{created['code']}")).raise_for_status().json()
        if state["prepared_images"] >= state["images_to_prepare"]:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{state['prepared_images']} of {state['images_to_prepare']} images prepared")
        await asyncio.sleep(0.5)
    host = {"Authorization": f"Bearer {created['host_token']}"}
    (await client.post(f"/api/v1/events/{created['code']}/start", headers=host)).raise_for_status()
    return created["code"], created["host_token"]


async def play(app: Any, rounds: int, profile: cProfile.Profile | None) -> dict[str, list[Sample]]:
    counters = Counters()
    samples: dict[str, list[Sample]] = defaultdict(list)
    async with app.router.lifespan_context(app):
        watch(app.state.database.engine, counters)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            code, _ = await prepared_event(client, rounds, timeout_s=600)
            joined = await timed(
                samples,
                counters,
                "POST /players",
                client.post("/api/v1/players", json={"nickname": "p", "event_code": code}),
            )
            headers = {"Authorization": f"Bearer {joined.raise_for_status().json()['token']}"}
            if profile is not None:
                profile.enable()
            for _ in range(rounds):
                created = await timed(samples, counters, "POST /rounds", client.post("/api/v1/rounds", headers=headers))
                body = created.raise_for_status().json()
                image = await timed(samples, counters, "GET image", client.get(body["image_url"]))
                image.raise_for_status()
                answer = {"choice": body["choices"][0]}
                answered = await timed(
                    samples, counters, "POST answer", client.post(body["answer_url"], headers=headers, json=answer)
                )
                answered.raise_for_status()
            if profile is not None:
                profile.disable()
    return samples


def summary(samples: dict[str, list[Sample]]) -> str:
    lines = [
        "| request | n | wall p50 ms | CPU p50 ms | SQL statements | commits | pool checkouts | statements by kind |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in samples.items():
        kinds: dict[str, int] = defaultdict(int)
        for row in rows:
            for kind, n in row.kinds.items():
                kinds[kind] += n
        by_kind = ", ".join(f"{kind} {n / len(rows):g}" for kind, n in sorted(kinds.items()))
        lines.append(
            f"| {name} | {len(rows)} | {statistics.median(r.wall_ms for r in rows):.1f} | "
            f"{statistics.median(r.cpu_ms for r in rows):.1f} | {statistics.mean(r.statements for r in rows):g} | "
            f"{statistics.mean(r.commits for r in rows):g} | {statistics.mean(r.checkouts for r in rows):g} | "
            f"{by_kind} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("ARENA_BENCH_POSTGRES_URL", ""))
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--cprofile", type=int, default=0, help="print this many functions by cumulative time")
    parser.add_argument("--sql", action="store_true", help="print the statements of the last request of each kind")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql") or not 1 <= args.rounds <= 50:
        parser.error("a PostgreSQL --database-url, and 1..50 rounds")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; load average {os.getloadavg()}")
    migrate.upgrade(args.database_url)
    settings = Settings(
        database_url=args.database_url,
        environment="test",
        secret_key="profile-secret",
        device="cpu",
        torch_threads=1,
        opponents="fashion-cnn",
        stock_interval_s=0.2,
        rate_limit_per_player="1000/second",
        rate_limit_per_address="1000/second",
    )
    profile = cProfile.Profile() if args.cprofile else None
    samples = asyncio.run(play(create_app(settings), args.rounds, profile))
    print(summary(samples))
    if args.sql:
        for name, rows in samples.items():
            print(f"\n{name}:")
            print("\n".join(f"  {text[:240]}" for text in rows[-1].texts))
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.cprofile)
        print(out.getvalue())
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
