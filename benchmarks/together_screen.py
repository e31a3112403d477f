"""Screen update latency of a together round with N phones holding their streams, on one and on two web processes.

For each setup it starts `arena serve` on loopback (free ports) against one PostgreSQL database (the second process
with --no-migrate), creates a together event with one image and starts it. One big screen per process holds
`/events/{code}/stream?role=screen`; N phones join, spread over the processes in turn as a round-robin load balancer
would, and each holds its status stream (`role=player`) on its process. Then it measures:

* next image: the host (on the first process) shows the image; from the host's reply to each phone's status event
  (phones on the host's process and on the other apart) and to each screen showing "Image 1";
* answers: as the phone page does, each phone fetches its copy of the image when its stream tells it, and its
  player answers after looking for --think seconds (uniform); for the k-th acknowledged answer, the time until a
  screen's "N answers in" reached k, on each screen (answers acknowledged in the grace second after the countdown
  are counted apart: the screen shows the reveal by then, not a count);
* reveal: from the end of the countdown and its grace to each screen showing the truth (no publish: each process
  wakes by itself).

Bounded: loopback only, at most 500 phones, a hard --timeout per setup, servers stopped at the end. The database's
existing rows are left alone (each run makes a new event).

Usage: python benchmarks/together_screen.py [--players 200] [--processes 1 2] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from workshop_load import percentile, running_server

COUNT = re.compile(r"(\d+) answers? in")
ANSWER_GRACE_S = 1.0  # app/game/events/together.py


@dataclass
class Screen:
    process: int
    shown_image: float | None = None
    counts: list[tuple[float, int]] = field(default_factory=list)
    revealed: float | None = None


@dataclass
class Results:
    processes: int
    players: int = 0
    streams_peak: int = 0
    next_image_acked: float = 0.0
    phone_heard: list[tuple[int, float]] = field(default_factory=list)  # (process, monotonic time)
    acks: list[float] = field(default_factory=list)
    reveal_due: float = 0.0  # monotonic time of closes_at + grace
    screens: list[Screen] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def sse_events(client: httpx.AsyncClient, path: str):  # type: ignore[no-untyped-def]
    """(event name, data) per server-sent event; the data lines of one event joined with newlines."""
    async with client.stream("GET", path, timeout=None) as response:
        response.raise_for_status()
        name, data = "", []
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif not line and name:
                yield name, "\n".join(data)
                name, data = "", []


async def watch_screen(client: httpx.AsyncClient, code: str, screen: Screen, ready: asyncio.Event) -> None:
    async for name, data in sse_events(client, f"/events/{code}/stream?role=screen"):
        ready.set()
        if name != "together":
            continue
        now = time.monotonic()
        if "what is it?" in data and screen.shown_image is None:
            screen.shown_image = now
        if (match := COUNT.search(data)) is not None:
            screen.counts.append((now, int(match.group(1))))
        if "the room vs the machine" in data and screen.revealed is None:
            screen.revealed = now


async def hold_phone(
    client: httpx.AsyncClient,
    code: str,
    process: int,
    results: Results,
    connected: asyncio.Event,
    told: asyncio.Event,
) -> None:
    statuses = 0
    async for name, _data in sse_events(client, f"/events/{code}/stream?role=player"):
        if name != "status":
            continue
        statuses += 1
        if statuses == 1:
            results.streams_peak += 1
            connected.set()
        elif statuses == 2:  # the first change after joining: the next image
            results.phone_heard.append((process, time.monotonic()))
            told.set()


async def join(client: httpx.AsyncClient, code: str, number: int, results: Results) -> dict[str, str] | None:
    joined = await client.post("/api/v1/players", json={"nickname": f"p{number:03d}", "event_code": code})
    if joined.status_code != 201:
        results.errors.append(f"join {joined.status_code}: {joined.text[:100]}")
        return None
    results.players += 1
    return {"Authorization": f"Bearer {joined.json()['token']}"}


async def answer(
    client: httpx.AsyncClient, headers: dict[str, str], told: asyncio.Event, think: float, results: Results
) -> None:
    await told.wait()
    created = await client.post("/api/v1/rounds", headers=headers)
    if created.status_code != 201:
        results.errors.append(f"round {created.status_code}: {created.text[:100]}")
        return
    body = created.json()
    await asyncio.sleep(think)
    answered = await client.post(body["answer_url"], json={"choice": body["choices"][0]}, headers=headers)
    if answered.status_code != 200:
        results.errors.append(f"answer {answered.status_code}: {answered.text[:100]}")
        return
    results.acks.append(time.monotonic())


async def run(bases: list[str], players: int, round_seconds: int, think: tuple[float, float], seed: int) -> Results:
    results = Results(processes=len(bases))
    per_process = players // len(bases) + 1
    limits = httpx.Limits(max_connections=per_process * 2 + 20, max_keepalive_connections=per_process + 20)
    clients = [httpx.AsyncClient(base_url=base, limits=limits, timeout=120) for base in bases]
    tasks: list[asyncio.Task[None]] = []
    try:
        host_client = clients[0]
        created = await host_client.post(
            "/api/v1/events",
            json={
                "name": "Together latency",
                "style": "together",
                "rounds": 1,
                "round_seconds": round_seconds,
                "eps_min": 4 / 255,
                "eps_max": 12 / 255,
            },
        )
        created.raise_for_status()
        event = created.json()
        code, host = event["code"], {"Authorization": f"Bearer {event['host_token']}"}
        (await host_client.post(f"/api/v1/events/{code}/start", headers=host)).raise_for_status()
        for process, client in enumerate(clients):
            screen, ready = Screen(process), asyncio.Event()
            results.screens.append(screen)
            tasks.append(asyncio.create_task(watch_screen(client, code, screen, ready)))
            await asyncio.wait_for(ready.wait(), 30)
        phones: list[tuple[httpx.AsyncClient, dict[str, str], asyncio.Event]] = []
        arriving = asyncio.Semaphore(20)  # a room walks in over a few seconds, not in one instant

        async def arrive(number: int) -> None:
            process = number % len(clients)
            async with arriving:
                headers = await join(clients[process], code, number, results)
                if headers is None:
                    return
                connected, told = asyncio.Event(), asyncio.Event()
                phone = hold_phone(clients[process], code, process, results, connected, told)
                tasks.append(asyncio.create_task(phone))
                await asyncio.wait_for(connected.wait(), 30)
                phones.append((clients[process], headers, told))

        await asyncio.gather(*(arrive(number) for number in range(players)))
        rng = random.Random(seed)
        answering = [
            asyncio.create_task(answer(client, headers, told, rng.uniform(*think), results))
            for client, headers, told in phones
        ]
        tasks.extend(answering)
        shown = await host_client.post(f"/api/v1/events/{code}/next-image", headers=host)
        shown.raise_for_status()
        results.next_image_acked = time.monotonic()
        closes_at = datetime.fromisoformat(shown.json()["shared_round"]["closes_at"])
        due_in = (closes_at - datetime.now(closes_at.tzinfo)).total_seconds() + ANSWER_GRACE_S
        results.reveal_due = time.monotonic() + due_in
        await asyncio.gather(*answering)
        deadline = results.reveal_due + 10
        while time.monotonic() < deadline and any(s.revealed is None for s in results.screens):
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task
        for client in clients:
            await client.aclose()
    return results


def ms(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"p50 {percentile(values, 0.5) * 1000:.0f} ms, p95 {percentile(values, 0.95) * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms (n={len(values)})"
    )


def answer_latencies(results: Results, screen: Screen) -> tuple[list[float], int]:
    values, missed = [], 0
    in_time = [acked for acked in sorted(results.acks) if acked < results.reveal_due - ANSWER_GRACE_S]
    for k, acked in enumerate(in_time, start=1):
        shown = next((t for t, n in screen.counts if n >= k), None)
        if shown is None:
            missed += 1
        else:
            values.append(max(0.0, shown - acked))
    return values, missed


def report(results: Results, players: int) -> tuple[str, bool]:
    lines = [
        f"== {results.processes} web process(es); phones joined {results.players}/{players}, "
        f"phone streams held {results.streams_peak}",
    ]
    for process in range(results.processes):
        heard = [t - results.next_image_acked for p, t in results.phone_heard if p == process]
        where = "the host's process" if process == 0 else "the other process"
        lines.append(f"next image -> phones on {where}: {ms(heard)}")
    ok = not results.errors and len(results.phone_heard) == results.players
    late = sum(1 for acked in results.acks if acked >= results.reveal_due - ANSWER_GRACE_S)
    for screen in results.screens:
        shown = None if screen.shown_image is None else screen.shown_image - results.next_image_acked
        latencies, missed = answer_latencies(results, screen)
        revealed = None if screen.revealed is None else screen.revealed - results.reveal_due
        lines.append(
            f"screen on process {screen.process}: image shown after "
            f"{'never' if shown is None else f'{shown * 1000:.0f} ms'}; answers ({len(results.acks)}, "
            f"{late} in the grace second): "
            f"{ms(latencies)}, missed {missed}; reveal after countdown+grace: "
            f"{'not shown' if revealed is None else f'{revealed * 1000:.0f} ms'}"
        )
        ok = ok and shown is not None and not missed
    lines.append(f"errors: {len(results.errors)}" + (f" (first: {results.errors[0]})" if results.errors else ""))
    return "\n".join(lines), ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--round-seconds", type=int, default=30, help="the image's countdown (5-120)")
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(2.0, 8.0),
        metavar=("MIN", "MAX"),
        help="seconds a player looks at the image before answering (uniform)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=240.0, help="hard stop for each setup, in seconds")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ARENA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="the PostgreSQL database both processes share (migrated to head first)",
    )
    args = parser.parse_args()
    if not (1 <= args.players <= 500 and 5 <= args.round_seconds <= 120):
        parser.error("keep it bounded: 1-500 players, a 5-120 s countdown")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average (1 min) at the start: {os.getloadavg()[0]:.1f}"
    )
    ok = True
    for count in args.processes:
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            bases = [
                str(
                    stack.enter_context(
                        running_server(tmp, database_url=args.database_url, migrate=n == 0, name=f"web{n}")
                    )
                )
                for n in range(count)
            ]
            try:
                results = asyncio.run(
                    asyncio.wait_for(
                        run(bases, args.players, args.round_seconds, tuple(args.think), args.seed), args.timeout
                    )
                )
            except TimeoutError:
                print(f"stopped after the {args.timeout:.0f} s limit", file=sys.stderr)
                return 2
        text, fine = report(results, args.players)
        print(text)
        ok = ok and fine
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
