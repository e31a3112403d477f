"""New-round latency with and without the ready-round pool, side by side in one run, on loopback.

For each configuration (pool off: ARENA_READY_ROUNDS=0; pool on: ARENA_READY_ROUNDS=K) it starts `arena serve` on
127.0.0.1 on the PostgreSQL database you name, with the model service in-process (as `make play` runs it) or,
with --remote, as a separate `arena modelsvc` process. N simulated players then join and play R rounds each
through the JSON API the way people do: ask for a round, fetch its image, look at it for --think seconds (drawn
uniformly from 0.5x to 1.5x), answer. It prints the new-round latency (POST /api/v1/rounds) p50/p95/p99 of each
configuration and their ratio, the pool's hits and misses, and every non-2xx reply. The configurations alternate
--repeats times (off, on, off, on, ...), each on a fresh server, so slow drifts of a shared machine hit both.

Bounded: loopback only, at most 200 players and 50 rounds each, and --timeout per run after which it is cancelled.
Ctrl-C stops the servers.

Usage: python benchmarks/pool_latency.py --database-url postgresql://postgres@127.0.0.1:5432/arena_bench
       [--players 1 10] [--rounds 10] [--think 1.5] [--pool-size 2] [--repeats 2] [--remote]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import players_load  # noqa: E402  (same folder: the server launcher, the machine line, percentiles)

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def running_model_service(
    workdir: Path, torch_threads: int = 1, port: int | None = None, **env_extra: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`arena modelsvc` on 127.0.0.1 (a free port unless given); yields its URL and process once /v1/health is
    200. Stops it at the end, if it is still running."""
    port = port or players_load.free_port()
    env = dict(os.environ)
    env.update(ARENA_ENVIRONMENT="test", ARENA_DEVICE="cpu", ARENA_TORCH_THREADS=str(torch_threads), **env_extra)
    env.setdefault("ARENA_OPPONENTS", env.get("ARENA_OPPONENT", "fashion-cnn"))
    log_path = workdir / f"modelsvc-{port}.log"
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "modelsvc", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(f"{url}/v1/health", process, log_path)
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, limit_s: float = 180.0) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not healthy after {limit_s:.0f} s:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.2)


@dataclass
class Run:
    label: str
    players: int
    new_round_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    answers_acked: int = 0
    pool: dict[str, int] = field(default_factory=dict)
    timed_out: bool = False


async def player(client: httpx.AsyncClient, run: Run, index: int, rounds: int, think_s: float, seed: int) -> None:
    rng = random.Random(seed * 1000 + index)
    response = await client.post("/api/v1/players", json={"nickname": f"pool{index}-{rng.randrange(10**6)}"})
    if response.status_code != 201:
        run.statuses[f"POST /players {response.status_code}"] += 1
        return
    headers = {"Authorization": f"Bearer {response.json()['token']}"}
    await asyncio.sleep(rng.uniform(0, think_s))  # people do not all arrive in the same millisecond
    for _ in range(rounds):
        while True:
            started = time.perf_counter()
            response = await client.post("/api/v1/rounds", headers=headers)
            run.new_round_s.append(time.perf_counter() - started)
            if response.status_code == 201:
                break
            run.statuses[f"POST /rounds {response.status_code}"] += 1
            if response.status_code != 503:
                return
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        created = response.json()
        image = await client.get(created["image_url"])
        if image.status_code != 200:
            run.statuses[f"GET image {image.status_code}"] += 1
        await asyncio.sleep(rng.uniform(0.5 * think_s, 1.5 * think_s))
        answer = await client.post(
            created["answer_url"], headers=headers, json={"choice": rng.choice(created["choices"])}
        )
        if answer.status_code != 200:
            run.statuses[f"POST answer {answer.status_code}"] += 1
        else:
            run.answers_acked += 1


async def play(base: str, run: Run, rounds: int, think_s: float, seed: int, timeout_s: float) -> None:
    limits = httpx.Limits(max_connections=run.players + 10, max_keepalive_connections=run.players + 10)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(60.0)) as client:

        async def guarded(index: int) -> None:
            try:
                await player(client, run, index, rounds, think_s, seed)
            except httpx.HTTPError as error:
                run.errors.append(f"player {index}: {type(error).__name__}: {error}")

        try:
            await asyncio.wait_for(asyncio.gather(*(guarded(i) for i in range(run.players))), timeout_s)
        except TimeoutError:
            run.timed_out = True
        pool = (await client.get("/healthz")).json()["model"].get("pool") or {}
        run.pool = {key: int(pool[key]) for key in ("hits", "misses", "made", "expired") if key in pool}


def one_run(args: argparse.Namespace, workdir: Path, label: str, pool_size: int, players: int, seed: int) -> Run:
    run = Run(label=label, players=players)
    env = {"ARENA_READY_ROUNDS": str(pool_size)}
    with contextlib.ExitStack() as stack:
        if args.remote:
            url, _ = stack.enter_context(running_model_service(workdir, args.torch_threads))
            env["ARENA_MODEL_SERVICE_URL"] = url
        base = stack.enter_context(players_load.running_server(args.database_url, workdir, args.torch_threads, **env))
        if pool_size:
            time.sleep(args.warmup)  # the pool fills the first step while the room gathers, as it would for real
        asyncio.run(play(base, run, args.rounds, args.think, seed, args.timeout))
    server_errors = sum(
        n for key, n in run.statuses.items() if key.rsplit(" ", 1)[1].startswith("5") and "503" not in key
    )
    if server_errors:  # keep the server's side of it (running_server copied its log when it stopped)
        kept = Path(tempfile.gettempdir()) / f"pool_latency_{players}p_{pool_size}_{seed}.log"
        shutil.copyfile(Path(tempfile.gettempdir()) / "players_load_server.log", kept)
        run.errors.append(f"{server_errors} server errors; server log kept in {kept}")
    return run


def summary(runs: list[Run]) -> dict[str, float]:
    values = [v for run in runs for v in run.new_round_s]
    return {q: players_load.percentile(values, p) * 1000 for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ARENA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/arena_bench"),
    )
    parser.add_argument("--players", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--think", type=float, default=1.5, help="mean seconds a player looks at a round")
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds between server start and first player")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--remote", action="store_true", help="model service as a separate arena modelsvc process")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL")
    if max(args.players) > 200 or args.rounds > 50 or args.pool_size < 1:
        parser.error("at most 200 players and 50 rounds; --pool-size at least 1 (the comparison is with 0)")
    console = Console()
    console.print(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {players_load.machine()}")
    results: dict[tuple[int, str], list[Run]] = {}
    plan = [
        (n, label, size)
        for n in args.players
        for _ in range(args.repeats)
        for label, size in (("pool off", 0), (f"pool {args.pool_size}", args.pool_size))
    ]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with tempfile.TemporaryDirectory() as tmp, Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("runs", total=len(plan))
        for k, (players, label, size) in enumerate(plan):
            progress.update(task, description=f"{players} players, {label}")
            run = one_run(args, Path(tmp), label, size, players, seed=k // 2)
            results.setdefault((players, label), []).append(run)
            progress.advance(task)
    placement = "arena modelsvc process" if args.remote else "in-process model service"
    console.print(
        f"new round (POST /api/v1/rounds) latency, ms; {placement}, PGD-20 fashion-cnn, PostgreSQL, "
        f"{args.rounds} rounds per player, think {args.think} s, {args.repeats} alternating repeats"
    )
    console.print("| players | pool | rounds | p50 | p95 | p99 | pool hits / misses | non-2xx | errors |")
    console.print("|---|---|---|---|---|---|---|---|---|")
    ok = True
    for players in args.players:
        rows = {}
        for label in ("pool off", f"pool {args.pool_size}"):
            runs = results[(players, label)]
            stats = summary(runs)
            rows[label] = stats
            hits = sum(run.pool.get("hits", 0) for run in runs)
            misses = sum(run.pool.get("misses", 0) for run in runs)
            statuses = sum((run.statuses for run in runs), Counter())
            errors = sum(len(run.errors) for run in runs) + sum(run.timed_out for run in runs)
            ok = ok and errors == 0
            console.print(
                f"| {players} | {label} | {sum(len(r.new_round_s) for r in runs)} | {stats['p50']:.0f} | "
                f"{stats['p95']:.0f} | {stats['p99']:.0f} | {hits} / {misses} | "
                f"{dict(statuses) or 0} | {errors} |"
            )
        off, on = rows["pool off"], rows[f"pool {args.pool_size}"]
        console.print(
            f"  {players} players: pool/off p50 {on['p50'] / off['p50']:.2f}x, p95 {on['p95'] / off['p95']:.2f}x, "
            f"p99 {on['p99'] / off['p99']:.2f}x"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
