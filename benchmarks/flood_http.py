"""A flood of expensive rounds over HTTP while honest players play, all on loopback.

Starts the README's production layout on 127.0.0.1: `arena modelsvc` (fashion-cnn and fashion-defgan loaded) and
`arena serve` reaching it through ARENA_MODEL_SERVICE_URL (`--placement inprocess`: the model service inside the
web server instead), on a fresh SQLite file unless --database-url names another database, with the server's
default limits (rate limits, admission budgets, the ready-round pool). Then, side by side in one run:

* quiet: 20 honest players (127.0.0.1) each play --rounds default rounds through the JSON API
  (`POST /api/v1/rounds`, then the answer after --think seconds, as a person would) and nothing else runs;
* flood, one player: the same, while one hostile client (its own loopback address, 127.0.0.2) keeps 64 requests
  for `{"opponent": "fashion-defgan", "attack": "hopskipjump"}` in flight as ONE player, answering each round it
  gets at once and sending every refusal again after 50 ms (it ignores Retry-After);
* flood, 64 players: the same flood shape spread over 64 players (one request each, 64 at once);
* quiet again: the first phase repeated, to see how much the machine itself drifted.

The flood starts once the first honest round has been answered (it hits a room at play) and stops when the honest
players are done (its open requests are dropped; the server drops their jobs unrun). For the honest players it
prints new-round p50/p95/max (from the first request to the round, retries included) and their 503s and 429s;
for the hostile client its statuses. Bounded: loopback only, --rounds <= 50, a --timeout per phase.

    python benchmarks/flood_http.py [--rounds 8] [--think 2.5] [--placement separate|inprocess]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.players_load import machine, percentile, running_model_service, running_server  # noqa: E402

HONEST_ADDRESS = "127.0.0.1"
HOSTILE_ADDRESS = "127.0.0.2"  # loopback too: the whole 127.0.0.0/8 is
EXPENSIVE = {"opponent": "fashion-defgan", "attack": "hopskipjump"}
OPPONENTS = "fashion-cnn,fashion-defgan"
HOSTILE_RETRY_S = 0.05


@dataclass
class Honest:
    new_round_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    opponents: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


@dataclass
class Hostile:
    statuses: Counter[str] = field(default_factory=Counter)
    rounds: int = 0
    errors: int = 0


@dataclass
class Phase:
    name: str
    honest: Honest
    hostile: Hostile
    wall_s: float
    load: tuple[str, str]
    timed_out: bool = False


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def client(base: str, address: str, connections: int) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(
        local_address=address,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0),
    )
    return httpx.AsyncClient(base_url=base, transport=transport, timeout=httpx.Timeout(180.0))


async def join(http: httpx.AsyncClient, nickname: str) -> dict[str, str]:
    while True:
        response = await http.post("/api/v1/players", json={"nickname": nickname})
        if response.status_code == 201:
            body = response.json()
            return {"Authorization": f"Bearer {body['token']}"}
        if response.status_code not in (429, 503):
            raise RuntimeError(f"joining: {response.status_code} {response.text[:200]}")
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


async def honest_player(
    http: httpx.AsyncClient, index: int, args: argparse.Namespace, tally: Honest, playing: asyncio.Event
) -> None:
    headers = await join(http, f"honest{index}")
    for _ in range(args.rounds):
        started = time.perf_counter()
        while True:  # an honest client waits as long as Retry-After says
            response = await http.post("/api/v1/rounds", headers=headers)
            if response.status_code == 201:
                break
            tally.statuses[str(response.status_code)] += 1
            if response.status_code not in (429, 503):
                tally.errors.append(f"{response.status_code} {response.text[:200]}")
                return
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        tally.new_round_s.append(time.perf_counter() - started)
        created = response.json()
        tally.opponents[f"{created.get('opponent')}/{created.get('attack')}"] += 1
        await asyncio.sleep(args.think)
        answer = await http.post(created["answer_url"], headers=headers, json={"choice": created["choices"][0]})
        if answer.status_code != 200:
            tally.errors.append(f"answer {answer.status_code} {answer.text[:200]}")
        playing.set()


async def hostile_slot(http: httpx.AsyncClient, headers: dict[str, str], tally: Hostile) -> None:
    while True:
        try:
            response = await http.post("/api/v1/rounds", headers=headers, json=EXPENSIVE)
        except httpx.HTTPError:
            tally.errors += 1
            await asyncio.sleep(HOSTILE_RETRY_S)
            continue
        tally.statuses[str(response.status_code)] += 1
        if response.status_code == 201:
            tally.rounds += 1
            created = response.json()
            with contextlib.suppress(httpx.HTTPError):  # answered at once: the next request starts a new round
                await http.post(created["answer_url"], headers=headers, json={"choice": created["choices"][0]})
        else:
            await asyncio.sleep(HOSTILE_RETRY_S)


async def run_phase(base: str, name: str, flood_players: int, args: argparse.Namespace) -> Phase:
    honest, hostile, playing = Honest(), Hostile(), asyncio.Event()
    load_before = load_average()
    async with client(base, HONEST_ADDRESS, args.honest + 10) as calm, client(base, HOSTILE_ADDRESS, 80) as rude:
        flooders = [await join(rude, f"flood{k}") for k in range(flood_players)]
        started = time.perf_counter()
        players = asyncio.gather(*(honest_player(calm, k, args, honest, playing) for k in range(args.honest)))
        slots: list[asyncio.Task[None]] = []
        timed_out = False
        try:
            async with asyncio.timeout(args.timeout):
                if flooders:
                    await playing.wait()
                    slots = [
                        asyncio.create_task(hostile_slot(rude, flooders[k % len(flooders)], hostile))
                        for k in range(args.greedy)
                    ]
                await players
        except TimeoutError:  # reported as such; the honest rounds made so far still count
            timed_out = True
        finally:
            players.cancel()
            for slot in slots:
                slot.cancel()
            await asyncio.gather(players, *slots, return_exceptions=True)
        wall = time.perf_counter() - started
    return Phase(name, honest, hostile, wall, (load_before, load_average()), timed_out)


def row(phase: Phase) -> str:
    times = [s * 1000 for s in phase.honest.new_round_s]
    p50 = statistics.median(times) if times else float("nan")
    name = phase.name + (" (timed out)" if phase.timed_out else "")
    hostile = ", ".join(f"{status}: {n}" for status, n in sorted(phase.hostile.statuses.items())) or "–"
    return (
        f"| {name} | {len(times)} | {p50:.0f} | {percentile(times, 0.95):.0f} | {max(times, default=0):.0f} | "
        f"{phase.honest.statuses['503']} | {phase.honest.statuses['429']} | {hostile} | {phase.hostile.rounds} | "
        f"{phase.wall_s:.1f} | {phase.load[0]} → {phase.load[1]} |"
    )


@contextlib.contextmanager
def layout(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    database = args.database_url or f"sqlite:///{workdir / 'flood.db'}"
    os.environ["ARENA_OPPONENTS"] = OPPONENTS
    if args.placement == "inprocess":
        with running_server(database, workdir, torch_threads=args.torch_threads) as base:
            yield base
        return
    with (
        running_model_service(workdir, torch_threads=args.torch_threads) as service,
        running_server(database, workdir, torch_threads=args.torch_threads, ARENA_MODEL_SERVICE_URL=service) as base,
    ):
        yield base


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder, layout(args, Path(folder)) as base:
        phases = [
            await run_phase(base, "quiet", 0, args),
            await run_phase(base, "flood, one player", 1, args),
            await run_phase(base, f"flood, {args.greedy} players", args.greedy, args),
            await run_phase(base, "quiet again", 0, args),
        ]
    print(
        f"\n{machine()}; placement: {args.placement}; {args.honest} honest players x {args.rounds} default rounds, "
        f"{args.think} s to answer each; flood: {args.greedy} concurrent {EXPENSIVE} requests\n"
    )
    print(
        "| phase | honest rounds | p50 ms | p95 ms | max ms | honest 503 | honest 429 | hostile statuses | "
        "hostile rounds | wall s | load average |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for phase in phases:
        print(row(phase))
    quiet = percentile([s for s in phases[0].honest.new_round_s], 0.95)
    for phase in phases[1:]:
        print(f"honest p95, {phase.name} / quiet: {percentile(phase.honest.new_round_s, 0.95) / quiet:.2f}x")
    for phase in phases:
        if phase.honest.errors:
            print(f"{phase.name}: honest errors: {phase.honest.errors[:5]}")
        print(
            f"{phase.name}: honest rounds were {dict(phase.honest.opponents)}; hostile transport errors "
            f"{phase.hostile.errors}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, choices=range(1, 51), metavar="1..50")
    parser.add_argument("--honest", type=int, default=20)
    parser.add_argument("--greedy", type=int, default=64)
    parser.add_argument("--think", type=float, default=2.5, help="seconds an honest player takes to answer")
    parser.add_argument("--placement", choices=("separate", "inprocess"), default="separate")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per phase at most")
    asyncio.run(main(parser.parse_args()))
