"""Workshop load check: one event, N players on their "phones" and S big screens, all on loopback.

Starts `arena serve` on 127.0.0.1 (a free port, a throw-away SQLite database), creates and starts an own-pace
event, then:
  * S screens hold `GET /events/{code}/stream?role=screen` open and note when each `tally` update arrives and how
    many answers it counts (the fragment carries data-answers="N");
  * N players join by code over ~join-spread seconds, each holds its phone stream (`role=player`) open the whole
    time, and plays R rounds through the JSON API (ask for a round, look at it for 2-8 s, answer).
For every acknowledged answer it measures how long until each screen showed a count that includes it (0 when the
screen was faster than the answer's own reply). It prints rounds/s, the screen-update latency (p50/p95/max), the
connections held and any errors, and exits non-zero if a screen missed answers or p95 exceeds one second.

Bounded by construction: loopback only, at most --players 500 and --screens 10, and a hard --timeout (default
240 s) after which everything is cancelled and the server stopped.

Usage: python benchmarks/workshop_load.py [--players 200] [--screens 3] [--rounds 3] [--timeout 240]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ANSWERS = re.compile(r'data-answers="(\d+)"')
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Results:
    players: int = 0
    screens: int = 0
    acks: list[float] = field(default_factory=list)  # monotonic time of each answer's 200, in arrival order
    screen_updates: list[list[tuple[float, int]]] = field(default_factory=list)
    round_latency: list[float] = field(default_factory=list)
    player_streams_open: int = 0
    player_streams_peak: int = 0
    errors: list[str] = field(default_factory=list)
    model_queue_peak: int = 0
    model_batches: int = 0
    model_jobs: int = 0
    started: float = 0.0
    finished: float = 0.0

    def latencies(self) -> list[float]:
        values = []
        for updates in self.screen_updates:
            for k, acked in enumerate(self.acks, start=1):
                shown = next((t for t, n in updates if n >= k), None)
                if shown is None:
                    values.append(float("inf"))
                else:
                    values.append(max(0.0, shown - acked))
        return values


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(
    workdir: Path,
    torch_threads: int = 1,
    *,
    database_url: str | None = None,
    migrate: bool = True,
    name: str = "server",
) -> object:
    """`arena serve` on a free loopback port until the block ends: on a throw-away SQLite database in ``workdir``
    unless ``database_url`` says otherwise (several servers on one PostgreSQL database: ``migrate`` once)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        ARENA_DATABASE_URL=database_url or f"sqlite:///{workdir / 'arena.db'}",
        ARENA_SECRET_KEY="workshop-load-secret",
        ARENA_ENVIRONMENT="test",
        ARENA_DEVICE="cpu",
        ARENA_TORCH_THREADS=str(torch_threads),
    )
    log_path = workdir / f"{name}.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        + ([] if migrate else ["--no-migrate"]),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"server exited:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become healthy")
            time.sleep(0.25)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        kept = Path(tempfile.gettempdir()) / f"workshop_load_{name}.log"
        kept.write_text(log_path.read_text())


async def watch_screen(
    client: httpx.AsyncClient, code: str, updates: list[tuple[float, int]], ready: asyncio.Event
) -> None:
    async with client.stream("GET", f"/events/{code}/stream?role=screen", timeout=None) as response:
        response.raise_for_status()
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "tally":
                match = ANSWERS.search(line)
                if match:
                    updates.append((time.monotonic(), int(match.group(1))))
                    ready.set()


async def watch_health(client: httpx.AsyncClient, results: Results) -> None:
    """The model service's queue, batches and jobs, once a second (from /healthz)."""
    while True:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            model = (await client.get("/healthz")).json()["model"]
            results.model_queue_peak = max(results.model_queue_peak, int(model.get("queue", 0)))
            results.model_batches = int(model.get("batches_run", 0))
            results.model_jobs = int(model.get("jobs_run", 0))
        await asyncio.sleep(1.0)


async def hold_phone(client: httpx.AsyncClient, code: str, results: Results, connected: asyncio.Event) -> None:
    async with client.stream("GET", f"/events/{code}/stream?role=player", timeout=None) as response:
        response.raise_for_status()
        counted = False
        try:
            async for line in response.aiter_lines():
                if line.startswith("event: status") and not counted:
                    counted = True
                    results.player_streams_open += 1
                    results.player_streams_peak = max(results.player_streams_peak, results.player_streams_open)
                    connected.set()
        finally:
            if counted:
                results.player_streams_open -= 1


async def player(
    client: httpx.AsyncClient,
    code: str,
    number: int,
    rounds: int,
    delay: float,
    results: Results,
    rng: random.Random,
    phones: list[asyncio.Task[None]],
    think: tuple[float, float] = (2.0, 8.0),
) -> None:
    await asyncio.sleep(delay)
    joined = await client.post("/api/v1/players", json={"nickname": f"p{number:03d}", "event_code": code})
    if joined.status_code != 201:
        results.errors.append(f"join {joined.status_code}: {joined.text[:100]}")
        return
    results.players += 1
    headers = {"Authorization": f"Bearer {joined.json()['token']}"}
    connected = asyncio.Event()
    phone = asyncio.create_task(hold_phone(client, code, results, connected))
    phones.append(phone)  # phones stay connected until the end of the run, like a room that keeps the page open
    try:
        await asyncio.wait_for(connected.wait(), 30)
        for _ in range(rounds):
            started = time.monotonic()
            created = await client.post("/api/v1/rounds", headers=headers)
            if created.status_code != 201:
                results.errors.append(f"round {created.status_code}: {created.text[:100]}")
                return
            results.round_latency.append(time.monotonic() - started)
            body = created.json()
            await asyncio.sleep(rng.uniform(*think))
            answered = await client.post(
                body["answer_url"], json={"choice": rng.choice(body["choices"])}, headers=headers
            )
            if answered.status_code != 200:
                results.errors.append(f"answer {answered.status_code}: {answered.text[:100]}")
                return
            results.acks.append(time.monotonic())
    except Exception as error:  # keep going: one failed player is a result, not a crash
        results.errors.append(f"player {number}: {type(error).__name__}: {error}")


async def run(
    base: str,
    players: int,
    screens: int,
    rounds: int,
    join_spread: float,
    seed: int,
    think: tuple[float, float] = (2.0, 8.0),
) -> Results:
    results = Results(screens=screens)
    phones: list[asyncio.Task[None]] = []
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=players * 2 + screens + 20, max_keepalive_connections=players + 20)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        created = await client.post(
            "/api/v1/events", json={"name": "Load check", "eps_min": 4 / 255, "eps_max": 12 / 255}
        )
        created.raise_for_status()
        event = created.json()
        code = event["code"]
        (
            await client.post(
                f"/api/v1/events/{code}/start", headers={"Authorization": f"Bearer {event['host_token']}"}
            )
        ).raise_for_status()
        watchers = []
        for _ in range(screens):
            updates: list[tuple[float, int]] = []
            results.screen_updates.append(updates)
            ready = asyncio.Event()
            watchers.append(asyncio.create_task(watch_screen(client, code, updates, ready)))
            await asyncio.wait_for(ready.wait(), 30)
        results.started = time.monotonic()
        health = asyncio.create_task(watch_health(client, results))
        await asyncio.gather(
            *(
                player(
                    client,
                    code,
                    i,
                    rounds,
                    join_spread * i / players,
                    results,
                    random.Random(rng.random()),
                    phones,
                    think,
                )
                for i in range(players)
            )
        )
        results.finished = time.monotonic()
        total = len(results.acks)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(not u or u[-1][1] < total for u in results.screen_updates):
            await asyncio.sleep(0.05)
        for task in [*watchers, *phones, health]:
            task.cancel()
        for task in [*watchers, *phones, health]:
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task
    return results


def report(results: Results, players: int, screens: int, rounds: int) -> tuple[str, bool]:
    latencies = results.latencies()
    missed = sum(1 for v in latencies if v == float("inf"))
    finite = [v for v in latencies if v != float("inf")]
    elapsed = results.finished - results.started
    p95 = percentile(finite, 0.95)
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}",
        f"players joined: {results.players}/{players}; phone streams held at once (peak): "
        f"{results.player_streams_peak}; screens: {screens}",
        f"answers: {len(results.acks)} (expected {players * rounds}) in {elapsed:.1f} s; "
        f"rounds/s: {len(results.acks) / elapsed if elapsed else 0:.1f}",
        f"round creation latency: p50 {percentile(results.round_latency, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(results.round_latency, 0.95) * 1000:.0f} ms",
        f"screen update after an answer (over {len(finite)} answer x screen pairs): "
        f"p50 {percentile(finite, 0.5) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {max(finite, default=0) * 1000:.0f} ms; missed: {missed}",
        f"screen updates received: {[len(u) for u in results.screen_updates]}",
        f"model service: {results.model_jobs} images in {results.model_batches} batches, "
        f"queue peak {results.model_queue_peak}",
        f"errors: {len(results.errors)}" + (f" (first: {results.errors[0]})" if results.errors else ""),
    ]
    ok = not missed and not results.errors and p95 <= 1.0 and len(results.acks) == players * rounds
    return "\n".join(lines), ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--screens", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="rounds each player plays")
    parser.add_argument("--join-spread", type=float, default=20.0, help="seconds over which players arrive")
    parser.add_argument("--timeout", type=float, default=240.0, help="hard stop for the whole run, in seconds")
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(2.0, 8.0),
        metavar=("MIN", "MAX"),
        help="seconds a player looks at an image before answering (uniform)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="ARENA_TORCH_THREADS for the server (1: on a shared 2-core box, more threads thrash; 0: torch's default)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (1 <= args.players <= 500 and 1 <= args.screens <= 10 and 1 <= args.rounds <= 20):
        parser.error("keep it bounded: 1-500 players, 1-10 screens, 1-20 rounds")
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp), args.torch_threads) as base:
        try:
            results = asyncio.run(
                asyncio.wait_for(
                    run(
                        str(base),
                        args.players,
                        args.screens,
                        args.rounds,
                        args.join_spread,
                        args.seed,
                        tuple(args.think),
                    ),
                    args.timeout,
                )
            )
        except TimeoutError:
            print(f"stopped after the {args.timeout:.0f} s limit", file=sys.stderr)
            return 2
    text, ok = report(results, args.players, args.screens, args.rounds)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
