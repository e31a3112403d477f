"""Players of a prepared event against the real server on PostgreSQL, all on loopback (issue 15, item 4).

Starts `arena serve` on 127.0.0.1 (benchmarks/players_load.py's server, migrated at start) and creates an own-pace
event through the API with --rounds rounds per player and --players expected players, so the server prepares
rounds × players attacked images in the background (app/game/events/prepare.py). Once the host's event state says
they are all made, the host starts it and --players players join at once and each plays --rounds rounds with no
pause (`POST /api/v1/rounds`, `GET` its image, `POST .../answer`). It prints the preparation's time and rate, the
new-round and answer p50/p95/p99, non-2xx replies, the images the model made while players played (0 when every
round came from the stock), and answers acknowledged against answers stored.

Usage: python benchmarks/prepared_event_load.py --database-url postgresql://postgres@127.0.0.1:5432/arena_bench
       [--players 200] [--rounds 20] [--timeout 900]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from players_load import LevelResult, count_in_database, machine, report, run_level, running_server  # noqa: E402

EVENT_EPS = {"eps_min": 4 / 255, "eps_max": 12 / 255}  # five budgets, as a workshop range plays them


async def prepared_event(base: str, players: int, rounds: int, timeout_s: float, progress: Progress) -> dict:
    """Create the event and wait until its stock is made; its code, host token and preparation time."""
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(60.0)) as client:
        body = {"name": "Prepared load", "rounds": rounds, "expected_players": players, **EVENT_EPS}
        created = (await client.post("/api/v1/events", json=body)).raise_for_status().json()
        started = time.perf_counter()
        task = progress.add_task("preparing", total=players * rounds)
        while True:
            state = (await client.get(f"/api/v1/events/{created['code']}")).raise_for_status().json()
            progress.update(task, completed=state["prepared_images"])
            if state["prepared_images"] >= state["images_to_prepare"]:
                break
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"only {state['prepared_images']} of {state['images_to_prepare']} images made")
            await asyncio.sleep(1.0)
        progress.remove_task(task)
        created["prepare_s"] = time.perf_counter() - started
        headers = {"Authorization": f"Bearer {created['host_token']}"}
        (await client.post(f"/api/v1/events/{created['code']}/start", headers=headers)).raise_for_status()
    return created


async def run(
    base: str, players: int, rounds: int, timeout_s: float, prepare_timeout_s: float
) -> tuple[dict, LevelResult]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as progress:
        event = await prepared_event(base, players, rounds, prepare_timeout_s, progress)
        result = await run_level(base, players, rounds, timeout_s, progress, event_code=event["code"])
    return event, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ARENA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/arena_bench"),
        help="PostgreSQL database for the server (migrated at start; rows are added, none deleted)",
    )
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds the players have to play")
    parser.add_argument(
        "--prepare-timeout", type=float, default=1800.0, help="seconds the preparation may take (4,000 images: ~13 min)"
    )
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL (postgresql://user@127.0.0.1:5432/db)")
    if not 1 <= args.players <= 1000 or not 1 <= args.rounds <= 50:
        parser.error("bounded: 1..1000 players and at most 50 rounds each")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()}; load {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="arena-prepared-") as tmp:
        with running_server(args.database_url, Path(tmp), args.torch_threads) as base:
            event, result = asyncio.run(run(base, args.players, args.rounds, args.timeout, args.prepare_timeout))
    count_in_database(args.database_url, result)
    made = args.players * args.rounds
    print(f"prepared {made} images in {event['prepare_s']:.1f} s = {made / event['prepare_s']:.1f} images/s")
    print(report(result))
    print(f"load average at the end: {os.getloadavg()}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
