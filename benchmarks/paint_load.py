"""Concurrent painters against the real server, all on loopback (issue #21: p95 <= 100 ms per answer).

Starts `arena serve` on 127.0.0.1 (a free port) on a fresh SQLite file (or the database you name, migrated first)
with fashion-cnn loaded. N painters join at once (`POST /api/v1/players`), each starts a brush painting
(`POST /api/v1/paint`, budget 32 grey levels, a random eligible image) and then sends S strokes one after another
(`POST /api/v1/paint/{id}/strokes`: 3-12 random neighbouring pixels, lightened or darkened by 16), each
``--pause-ms`` after the previous answer (the time a person takes to draw the next stroke; 0: flat out).
Every stroke's reply is one answer of the opponent on the server-painted pixels: its wall time is what is measured
(p50/p95/p99). A painting that fools the opponent is replaced by a new one (its start is not timed). Also printed:
the model service's mean batch of painters' answers (/healthz), and every non-2xx reply by status.

The machine's smallest attack on each painted image starts in the background with each painting (on its own
thread, app/ml/service/in_process.py); it competes for the CPU during the run as it would in a real room.

Bounded: loopback only, at most 200 painters and 200 strokes each, and a hard --timeout after which the run is
cancelled (and reported as such) and the server stopped.

Usage: python benchmarks/paint_load.py [--painters 50] [--strokes 20] [--timeout 300] [--torch-threads 1]
       [--pause-ms 0] [--database-url postgresql://postgres@127.0.0.1:5432/paint_bench]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.players_load import running_server  # noqa: E402

MAX_PAINTERS = 200
MAX_STROKES = 200


@dataclass
class Run:
    painters: int
    strokes: int
    pause_s: float = 0.0
    answers_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    fooled: int = 0
    paintings: int = 0
    elapsed_s: float = 0.0
    timed_out: bool = False
    batches: int = 0
    jobs: int = 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def random_stroke(rng: random.Random) -> dict[str, object]:
    x, y = rng.randrange(4, 24), rng.randrange(4, 24)
    points = []
    for _ in range(rng.randrange(3, 13)):
        points.append([x, y])
        x = min(27, max(0, x + rng.choice((-1, 0, 1))))
        y = min(27, max(0, y + rng.choice((-1, 0, 1))))
    return {"tool": "brush", "points": points, "amount": rng.choice((16, -16))}


async def start_painting(client: httpx.AsyncClient, headers: dict[str, str], run: Run) -> dict[str, object] | None:
    response = await client.post("/api/v1/paint", headers=headers, json={"tool": "brush"})
    if response.status_code != 201:
        run.statuses[f"POST /paint {response.status_code}"] += 1
        return None
    run.paintings += 1
    body: dict[str, object] = response.json()
    return body


async def painter(client: httpx.AsyncClient, index: int, run: Run, seed: int) -> None:
    rng = random.Random(seed * 1_000 + index)
    joined = await client.post("/api/v1/players", json={"nickname": f"painter{index}"})
    if joined.status_code != 201:
        run.statuses[f"POST /players {joined.status_code}"] += 1
        return
    headers = {"Authorization": f"Bearer {joined.json()['token']}"}
    painting = await start_painting(client, headers, run)
    sent = 0
    while painting is not None and sent < run.strokes:
        if run.pause_s:
            await asyncio.sleep(run.pause_s * rng.uniform(0.5, 1.5))
        started = time.perf_counter()
        response = await client.post(str(painting["strokes_url"]), headers=headers, json=random_stroke(rng))
        elapsed = time.perf_counter() - started
        sent += 1
        if response.status_code != 200:
            run.statuses[f"POST /strokes {response.status_code}"] += 1
            await asyncio.sleep(float(response.headers.get("Retry-After", "0") or 0))
            continue
        run.answers_s.append(elapsed)
        if response.json()["status"] != "painting":
            run.fooled += 1
            painting = await start_painting(client, headers, run)


async def measure(base: str, painters: int, strokes: int, seed: int, timeout_s: float, pause_s: float) -> Run:
    run = Run(painters=painters, strokes=strokes, pause_s=pause_s)
    limits = httpx.Limits(max_connections=painters + 8, max_keepalive_connections=painters + 8)
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:
        before = (await client.get("/healthz")).json().get("model", {})
        started = time.perf_counter()
        tasks = [asyncio.create_task(painter(client, i, run, seed)) for i in range(painters)]
        done, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        run.timed_out = bool(pending)
        for task in done:
            if task.exception() is not None:
                run.errors.append(repr(task.exception()))
        run.elapsed_s = time.perf_counter() - started
        after = (await client.get("/healthz")).json().get("model", {})
    run.batches = int(after.get("batches_run", 0)) - int(before.get("batches_run", 0))
    run.jobs = int(after.get("jobs_run", 0)) - int(before.get("jobs_run", 0))
    return run


def report(run: Run, args: argparse.Namespace) -> None:
    answers = run.answers_s
    print(
        f"# paint_load: {run.painters} painters x {run.strokes} strokes, pause {args.pause_ms:.0f} ms, "
        f"torch threads {args.torch_threads}"
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"answers: {len(answers)} in {run.elapsed_s:.1f} s ({len(answers) / max(run.elapsed_s, 1e-9):.0f}/s)")
    print(
        "per answer: p50 {:.0f} ms, p95 {:.0f} ms, p99 {:.0f} ms, max {:.0f} ms".format(
            *(1000 * percentile(answers, q) for q in (50, 95, 99, 100))
        )
    )
    mean_batch = run.jobs / run.batches if run.batches else float("nan")
    print(f"model service: {run.jobs} jobs in {run.batches} batches (mean batch {mean_batch:.1f})")
    print(f"paintings started: {run.paintings}, fooled: {run.fooled}")
    print(f"non-2xx: {dict(run.statuses) or 'none'}; errors: {run.errors or 'none'}; timed out: {run.timed_out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--painters", type=int, default=50)
    parser.add_argument("--strokes", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--pause-ms", type=float, default=0.0, help="mean pause before each stroke (0.5x-1.5x)")
    args = parser.parse_args()
    if not 1 <= args.painters <= MAX_PAINTERS or not 1 <= args.strokes <= MAX_STROKES:
        parser.error(f"--painters 1..{MAX_PAINTERS} and --strokes 1..{MAX_STROKES}")
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        url = args.database_url or f"sqlite:///{workdir / 'paint.db'}"  # `arena serve` migrates it at start
        # Painters here stroke flat out (--pause-ms 0), faster than the stroke rate limits let a person: lift them.
        unlimited = {"ARENA_RATE_LIMIT_STROKES_PER_PLAYER": "1000000/minute"}
        unlimited |= {"ARENA_RATE_LIMIT_STROKES_PER_ADDRESS": "1000000/minute"}
        with running_server(url, workdir, torch_threads=args.torch_threads, **unlimited) as base:
            run = asyncio.run(measure(base, args.painters, args.strokes, args.seed, args.timeout, args.pause_ms / 1000))
    report(run, args)


if __name__ == "__main__":
    main()
