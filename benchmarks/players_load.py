"""Simulated players against the real server on PostgreSQL, all on loopback.

Starts `arena serve` on 127.0.0.1 (a free port) on the PostgreSQL database you name (it migrates it first), then
for each concurrency level N: N players join at once (`POST /api/v1/players`) and each plays R rounds through the
JSON API with no pause (`POST /api/v1/rounds`, `GET` its image, `POST .../answer`). It prints rounds/s, the
p50/p95/p99 latency of new round and of answer, every non-2xx reply by status, the model service's mean batch size,
and checks that the answers table holds exactly as many answers from these players as the server acknowledged
(200 replies). A 503 (model service busy, with Retry-After) is retried after that many seconds and still counted.

Bounded: loopback only, at most 500 players and 50 rounds each, and a hard --timeout per level after which the
level is cancelled (and reported as such) and the server stopped. Ctrl-C stops the server too.

Usage: python benchmarks/players_load.py --database-url postgresql://postgres@127.0.0.1:5432/arena_bench
       [--players 50 200] [--rounds 20] [--timeout 600] [--torch-threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import create_engine, func, select

from app.db.session import sync_url
from app.db.tables import AnswerRecord, RoundRecord
from benchmarks.bare_http import BareConnection

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LevelResult:
    players: int
    rounds_per_player: int
    joined: int = 0
    rounds_created: int = 0
    answers_acked: int = 0
    new_round_s: list[float] = field(default_factory=list)
    answer_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)  # "POST /rounds 503" -> count, non-2xx only
    errors: list[str] = field(default_factory=list)  # transport errors and timeouts
    player_ids: list[str] = field(default_factory=list)
    acked_rounds: list[str] = field(default_factory=list)  # round ids whose answer got a 200
    elapsed_s: float = 0.0
    timed_out: bool = False
    answers_in_db: int = -1
    rounds_in_db: int = -1
    lost: int = -1  # acknowledged answers the database does not hold
    batches: int = 0
    jobs: int = 0
    pool_made: int = 0  # of ``jobs``: made by the ready-round pool in the background, for no player of this level

    @property
    def non_2xx(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for key, n in self.statuses.items() if key.rsplit(" ", 1)[1].startswith("5"))

    @property
    def rounds_per_s(self) -> float:
        return self.answers_acked / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def ok(self) -> bool:
        return (
            not self.timed_out
            and self.server_errors == 0
            and not self.errors
            and self.answers_acked == self.players * self.rounds_per_player
            and self.lost == 0
            and self.answers_in_db == self.answers_acked
        )


def machine() -> str:
    """The CPU model as lscpu names it, the core count and whether CUDA is visible (by device files, no torch)."""
    model = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    gpu = "CUDA device present" if Path("/dev/nvidia0").exists() else "no GPU"
    return f"{model}, {os.cpu_count()} cores, {gpu}, python {platform.python_version()}"


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
    database_url: str, workdir: Path, torch_threads: int = 1, startup_timeout_s: float = 300.0, **env_extra: str
) -> Iterator[str]:
    """`arena serve` on 127.0.0.1 and a free port, on ``database_url`` (migrated at start); yields its base URL.
    Start-up (loading the opponent, finding its eligible test images) took over 120 s at load average 15."""
    with running_server_process(database_url, workdir, torch_threads, startup_timeout_s, **env_extra) as (base, _):
        yield base


@contextlib.contextmanager
def running_server_process(
    database_url: str,
    workdir: Path,
    torch_threads: int = 1,
    startup_timeout_s: float = 300.0,
    migrate: bool = True,
    name: str = "server",
    **env_extra: str,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``running_server``, yielding the process too (for its pid); ``migrate=False`` for every web process but the
    first on one database, as a deployment's replicas start after its migrate job."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        ARENA_DATABASE_URL=database_url,
        ARENA_SECRET_KEY="players-load-secret",
        ARENA_ENVIRONMENT="test",
        ARENA_DEVICE="cpu",
        ARENA_TORCH_THREADS=str(torch_threads),
        **env_extra,
    )
    # Load only the opponent rounds are played against (ARENA_OPPONENTS=auto would load every checkpoint).
    env.setdefault("ARENA_OPPONENTS", env.get("ARENA_OPPONENT", "fashion-cnn"))
    log_path = workdir / f"{name}-{port}.log"
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command + ([] if migrate else ["--no-migrate"]), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"server exited with {server.returncode}:\n{log_path.read_text()[-4000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server not healthy after {startup_timeout_s:.0f} s:\n{log_path.read_text()[-4000:]}"
                    )
                time.sleep(0.25)
            yield base, server
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            # The server's side of any 5xx, after the temporary folder is gone (one file per run: others use this too).
            kept = Path(tempfile.gettempdir()) / f"players_load_{name}_{os.getpid()}_{port}.log"
            shutil.copyfile(log_path, kept)
            print(f"server log: {kept}", file=sys.stderr)


@contextlib.contextmanager
def running_web_processes(
    database_url: str, workdir: Path, count: int, torch_threads: int = 1, **env_extra: str
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """``count`` `arena serve` processes on their own loopback ports, sharing ``database_url``: the first migrates
    it, the others start once it is healthy. Yields each one's base URL and process."""
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(
            running_server_process(database_url, workdir, torch_threads, name="web0", **env_extra)
        )
        others = [
            stack.enter_context(
                running_server_process(database_url, workdir, torch_threads, migrate=False, name=f"web{n}", **env_extra)
            )
            for n in range(1, count)
        ]
        yield [first, *others]


@contextlib.contextmanager
def running_model_service(workdir: Path, torch_threads: int = 1, startup_timeout_s: float = 300.0) -> Iterator[str]:
    """`arena modelsvc` on 127.0.0.1 and a free port (the separate-process placement); yields its URL once
    /v1/health answers 200, and stops it at the end."""
    port = free_port()
    env = dict(os.environ, ARENA_ENVIRONMENT="test", ARENA_DEVICE="cpu", ARENA_TORCH_THREADS=str(torch_threads))
    env.setdefault("ARENA_OPPONENTS", env.get("ARENA_OPPONENT", "fashion-cnn"))
    log_path = workdir / "modelsvc.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "modelsvc", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"arena modelsvc exited:\n{log_path.read_text()[-4000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"arena modelsvc not healthy after {startup_timeout_s:.0f} s")
                time.sleep(0.25)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def play(
    client: httpx.AsyncClient | BareConnection,
    result: LevelResult,
    index: int,
    rounds: int,
    progress: Progress,
    task: int,
    event_code: str | None = None,
):
    rng = random.Random(index)
    joining = {"nickname": f"load{index}-{rng.randrange(10**6)}"}
    if event_code is not None:  # a player of that event: its rounds by its rules (benchmarks/prepared_event_load.py)
        joining["event_code"] = event_code
    response = await client.post("/api/v1/players", json=joining)
    if response.status_code != 201:
        result.statuses[f"POST /players {response.status_code}"] += 1
        return
    result.joined += 1
    body = response.json()
    result.player_ids.append(body["player_id"])
    headers = {"Authorization": f"Bearer {body['token']}"}
    for _ in range(rounds):
        while True:  # a busy model service says 503 + Retry-After: a real client waits and asks again
            started = time.perf_counter()
            response = await client.post("/api/v1/rounds", headers=headers)
            result.new_round_s.append(time.perf_counter() - started)
            if response.status_code == 201:
                break
            result.statuses[f"POST /rounds {response.status_code}"] += 1
            if response.status_code != 503:
                return
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        created = response.json()
        result.rounds_created += 1
        image = await client.get(created["image_url"])
        if image.status_code != 200:
            result.statuses[f"GET image {image.status_code}"] += 1
        started = time.perf_counter()
        response = await client.post(
            created["answer_url"], headers=headers, json={"choice": rng.choice(created["choices"])}
        )
        result.answer_s.append(time.perf_counter() - started)
        if response.status_code != 200:
            result.statuses[f"POST answer {response.status_code}"] += 1
            continue
        result.answers_acked += 1
        result.acked_rounds.append(created["round_id"])
        progress.advance(task)


def model_counts(health: dict) -> tuple[int, int, int]:
    """(batches run, images made, images the ready-round pool made) from a web process's /healthz "model" part, or
    from `arena modelsvc`'s own /v1/health (no pool there)."""
    counters = health.get("remote", health)  # behind a remote model service, its counters are the remote's
    pool = health.get("pool", {})
    return int(counters.get("batches_run", 0)), int(counters.get("jobs_run", 0)), int(pool.get("made", 0))


async def model_totals(clients: list[httpx.AsyncClient], model_health_url: str | None) -> tuple[int, int, int]:
    """``model_counts`` over the web processes; one model service's counters when they share it."""
    counts = [model_counts((await client.get("/healthz")).json()["model"]) for client in clients]
    pool_made = sum(made for _, _, made in counts)
    if model_health_url is not None:
        async with httpx.AsyncClient(timeout=30) as client:
            batches, jobs, _ = model_counts((await client.get(model_health_url)).json())
        return batches, jobs, pool_made
    return sum(batches for batches, _, _ in counts), sum(jobs for _, jobs, _ in counts), pool_made


async def run_level(
    base: str | list[str],
    players: int,
    rounds: int,
    timeout_s: float,
    progress: Progress,
    event_code: str | None = None,
    model_health_url: str | None = None,
    bare: bool = False,
) -> LevelResult:
    """``players`` players with no pause, ``rounds`` rounds each. With several base URLs (web processes on one
    database) player i plays on base i mod N, as a round-robin load balancer would place them; ``model_health_url``
    is the shared model service's /v1/health, whose counters then count once."""
    bases = [base] if isinstance(base, str) else base
    result = LevelResult(players=players, rounds_per_player=rounds)
    # Idle connections expire on our side before uvicorn's 5 s keep-alive closes them, so a transport error is the
    # server's doing, not a race with its keep-alive timer. (After an unhandled exception uvicorn closes the
    # connection although the 500 it sent did not say `Connection: close`: the next request on it gets ReadError.)
    limits = httpx.Limits(max_connections=players + 10, max_keepalive_connections=players + 10, keepalive_expiry=2.0)
    task = progress.add_task(f"{players} players", total=players * rounds)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(120.0))
            )
            for url in bases
        ]
        before = await model_totals(clients, model_health_url)
        started = time.perf_counter()

        async def guarded(index: int) -> None:
            # bare: each player on a connection of its own (benchmarks/bare_http.py), the generator's CPU cut tenfold
            own = BareConnection(bases[index % len(bases)]) if bare else None
            try:
                await play(own or clients[index % len(clients)], result, index, rounds, progress, task, event_code)
            except httpx.HTTPError as error:
                result.errors.append(f"player {index}: {type(error).__name__}: {error}")
            finally:
                if own is not None:
                    await own.close()

        try:
            await asyncio.wait_for(asyncio.gather(*(guarded(i) for i in range(players))), timeout_s)
        except TimeoutError:
            result.timed_out = True
        result.elapsed_s = time.perf_counter() - started
        after = await model_totals(clients, model_health_url)
    result.batches, result.jobs, result.pool_made = (a - b for a, b in zip(after, before, strict=True))
    progress.remove_task(task)
    return result


def count_in_database(database_url: str, result: LevelResult) -> None:
    """What the database holds from this level's players: their rounds and answers, and which acknowledged answers
    (by round id) are missing. A level cut short by its timeout may hold answers whose reply never arrived."""
    engine = create_engine(sync_url(database_url))

    def chunks(ids: list[str]) -> Iterator[list[str]]:
        for start in range(0, len(ids), 500):
            yield ids[start : start + 500]

    try:
        with engine.connect() as conn:
            result.answers_in_db = result.rounds_in_db = found = 0
            for chunk in chunks(result.player_ids):
                result.answers_in_db += conn.scalar(
                    select(func.count()).select_from(AnswerRecord).where(AnswerRecord.player_id.in_(chunk))
                )
                result.rounds_in_db += conn.scalar(
                    select(func.count()).select_from(RoundRecord).where(RoundRecord.player_id.in_(chunk))
                )
            for chunk in chunks(result.acked_rounds):
                found += conn.scalar(
                    select(func.count()).select_from(AnswerRecord).where(AnswerRecord.round_id.in_(chunk))
                )
            result.lost = len(result.acked_rounds) - found
    finally:
        engine.dispose()


def report(result: LevelResult) -> str:
    ms = 1000.0
    statuses = ", ".join(f"{key}: {n}" for key, n in sorted(result.statuses.items())) or "none"
    mean_batch = result.jobs / result.batches if result.batches else float("nan")
    lines = [
        f"{result.players} players x {result.rounds_per_player} rounds: {result.answers_acked} answers acknowledged "
        f"in {result.elapsed_s:.1f} s = {result.rounds_per_s:.1f} rounds/s"
        + (" (TIMED OUT)" if result.timed_out else ""),
        f"  new round  p50/p95/p99 ms: {percentile(result.new_round_s, 0.5) * ms:.0f} / "
        f"{percentile(result.new_round_s, 0.95) * ms:.0f} / {percentile(result.new_round_s, 0.99) * ms:.0f}",
        f"  answer     p50/p95/p99 ms: {percentile(result.answer_s, 0.5) * ms:.0f} / "
        f"{percentile(result.answer_s, 0.95) * ms:.0f} / {percentile(result.answer_s, 0.99) * ms:.0f}",
        f"  non-2xx replies: {result.non_2xx} ({statuses}); 5xx: {result.server_errors}; "
        f"transport errors: {len(result.errors)}",
        f"  model service: {result.jobs} images in {result.batches} batches (mean batch {mean_batch:.1f}), "
        f"{result.pool_made} of them the ready-round pool's background refills",
        f"  database: {result.answers_in_db} answers and {result.rounds_in_db} rounds from these players; "
        f"{result.answers_acked} acknowledged, {result.lost} of them missing: "
        + ("OK" if result.lost == 0 and result.answers_in_db == result.answers_acked else "MISMATCH"),
    ]
    lines += [f"  error: {error}" for error in result.errors[:5]]
    return "\n".join(lines)


async def run(base: str, database_url: str, levels: list[int], rounds: int, timeout_s: float) -> list[LevelResult]:
    results = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as progress:
        for players in levels:
            result = await run_level(base, players, rounds, timeout_s, progress)
            count_in_database(database_url, result)
            results.append(result)
            progress.console.print(report(result))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ARENA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/arena_bench"),
        help="PostgreSQL database for the server (migrated at start; rows are added, none deleted)",
    )
    parser.add_argument("--players", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per level before it is cancelled")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument(
        "--model-service",
        choices=["inprocess", "process"],
        default="inprocess",
        help="inprocess: torch in the web server (the default placement); process: a separate `arena modelsvc` "
        "reached through ARENA_MODEL_SERVICE_URL",
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL (postgresql://user@127.0.0.1:5432/db)")
    if max(args.players) > 500 or args.rounds > 50 or min(args.players) < 1:
        parser.error("bounded: 1..500 players and at most 50 rounds each")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()}")
    print(
        f"server: arena serve on 127.0.0.1, PostgreSQL, ARENA_TORCH_THREADS={args.torch_threads}, "
        f"model service {args.model_service}"
    )
    with tempfile.TemporaryDirectory(prefix="arena-players-") as tmp, contextlib.ExitStack() as stack:
        try:
            env: dict[str, str] = {}
            if args.model_service == "process":
                env["ARENA_MODEL_SERVICE_URL"] = stack.enter_context(
                    running_model_service(Path(tmp), args.torch_threads)
                )
            with running_server(args.database_url, Path(tmp), args.torch_threads, **env) as base:
                results = asyncio.run(run(base, args.database_url, args.players, args.rounds, args.timeout))
        except KeyboardInterrupt:
            print("interrupted: server stopped")
            return 130
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
