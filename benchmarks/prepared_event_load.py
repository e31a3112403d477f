"""Players of a prepared event against the real server on PostgreSQL, all on loopback (issue 15, item 4).

Starts `arena serve` on 127.0.0.1 (benchmarks/players_load.py's server, migrated at start) and creates an own-pace
event through the API with --rounds rounds per player and --players expected players, so the server prepares
rounds × players attacked images in the background (app/game/events/prepare.py). Once the host's event state says
they are all made, the host starts it and --players players join at once and each plays --rounds rounds with no
pause (`POST /api/v1/rounds`, `GET` its image, `POST .../answer`). It prints the preparation's time and rate, the
new-round and answer p50/p95/p99, non-2xx replies, the images the model made while players played (split into the
ready-round pool's background refills and the rest), how many of the event's rounds were not served from its
stock (counted in the database), answers acknowledged against answers stored, and the CPU seconds each process
group used during play (load generator, web processes, model service, PostgreSQL backends, everything else).

--web-processes N starts `arena modelsvc` once and N `arena serve` processes on their own loopback ports sharing the
database (the live hub goes through LISTEN/NOTIFY there); player i plays on process i mod N, as a round-robin
load balancer would place them. --model-service process gives one web process the same placement.

A preparation takes minutes (5,000 images for 1,000 × 5), so it can be done once and played more than once:
--prepare-only stops with the event prepared and still in the lobby, its code and host token in --event-file; a
copy of the database (`createdb -T <prepared> <copy>`, with nothing connected to the original) then holds the same
event, and a run with --event-file on the copy starts it and plays it without preparing again.

Usage: python benchmarks/prepared_event_load.py --database-url postgresql://postgres@127.0.0.1:5432/arena_bench
       [--players 200] [--rounds 20] [--timeout 900] [--web-processes 1] [--model-service inprocess|process]
       [--event-file prepared.json [--prepare-only]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import create_engine, func, insert, literal, null, select, true
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_accounting import CpuAccount  # noqa: E402
from players_load import (  # noqa: E402
    count_in_database,
    machine,
    report,
    run_level,
    running_web_processes,
)
from pool_latency import running_model_service  # noqa: E402

from app.db.session import sync_url  # noqa: E402
from app.db.tables import EventRecord, RoundRecord, StockImageRecord  # noqa: E402

EVENT_EPS = {"eps_min": 4 / 255, "eps_max": 12 / 255}  # five budgets, as a workshop range plays them


def borrow_stock(database_url: str, from_code: str, to_code: str, count: int) -> int:
    """Give the event ``to_code`` ``count`` stock images copied from those prepared for ``from_code`` (the same
    settings, hence the same keys), the same ones again once each has been copied: for a run whose own preparation
    would take longer than there is time for. How many images the event holds then."""
    engine = create_engine(sync_url(database_url))
    table = StockImageRecord.__table__
    try:
        with engine.begin() as conn:
            source_id, target_id = (
                conn.scalar(select(EventRecord.id).where(EventRecord.code == code)) for code in (from_code, to_code)
            )
            available = conn.scalar(select(func.count()).select_from(table).where(table.c.event_id == source_id))
            if not available:
                raise RuntimeError(f"event {from_code} has no stock to borrow")
            copies = func.generate_series(1, -(-count // available)).table_valued("n").render_derived(name="copies")
            replaced = {"event_id": literal(target_id), "made_at": func.now(), "claimed_at": null()}
            names = [column.name for column in table.columns if column.name != "id"]
            chosen = (
                select(*(replaced.get(name, table.c[name]) for name in names))
                .select_from(table.join(copies, true()))
                .where(table.c.event_id == source_id)
                .order_by(copies.c.n, table.c.id)
                .limit(count)
            )
            conn.execute(insert(table).from_select(names, chosen))
            return int(conn.scalar(select(func.count()).select_from(table).where(table.c.event_id == target_id)) or 0)
    finally:
        engine.dispose()


async def prepared_event(
    base: str,
    players: int,
    rounds: int,
    timeout_s: float,
    progress: Progress,
    borrow: Callable[[str], object] | None = None,
) -> dict:
    """Create the event and wait until its stock is made (still in the lobby); its code, host token and
    preparation time."""
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(60.0)) as client:
        body = {"name": "Prepared load", "rounds": rounds, "expected_players": players, **EVENT_EPS}
        created = (await client.post("/api/v1/events", json=body)).raise_for_status().json()
        started = time.perf_counter()
        if borrow is not None:
            created["borrowed"] = await asyncio.to_thread(borrow, created["code"])
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
    return created


async def start_event(base: str, event: dict) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(60.0)) as client:
        headers = {"Authorization": f"Bearer {event['host_token']}"}
        (await client.post(f"/api/v1/events/{event['code']}/start", headers=headers)).raise_for_status()


def progress_bars() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, transient=True)


def stock_served(database_url: str, code: str) -> tuple[int, int, int]:
    """(the event's rounds, its stock images claimed, its stock images made): rounds minus claimed are the rounds
    that waited for the model."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            event_id = conn.scalar(select(EventRecord.id).where(EventRecord.code == code))
            of_event = StockImageRecord.event_id == event_id
            rounds = conn.scalar(select(func.count()).select_from(RoundRecord).where(RoundRecord.event_id == event_id))
            claimed = conn.scalar(
                select(func.count())
                .select_from(StockImageRecord)
                .where(of_event, StockImageRecord.claimed_at.isnot(None))
            )
            made = conn.scalar(select(func.count()).select_from(StockImageRecord).where(of_event))
    finally:
        engine.dispose()
    return int(rounds or 0), int(claimed or 0), int(made or 0)


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
    parser.add_argument("--web-processes", type=int, default=1, help="`arena serve` processes sharing the database")
    parser.add_argument(
        "--model-service",
        choices=["inprocess", "process"],
        default=None,
        help="inprocess: torch in each web server; process: one `arena modelsvc` for all of them (the default with "
        "--web-processes above 1, and the only choice there)",
    )
    parser.add_argument(
        "--client",
        choices=["httpx", "bare"],
        default="httpx",
        help="the players' HTTP client: httpx, or a bare keep-alive HTTP/1.1 connection each "
        "(benchmarks/bare_http.py), "
        "a tenth of httpx's CPU per request on the cores the server needs",
    )
    parser.add_argument("--event-file", type=Path, help="the prepared event's code and host token (kept or reused)")
    parser.add_argument("--prepare-only", action="store_true", help="prepare the event and stop (needs --event-file)")
    parser.add_argument(
        "--borrow-stock-from",
        type=Path,
        help="an --event-file of an event prepared in this database with the same settings: the new event's stock "
        "is copied from its images (repeating them as needed) instead of made, and no web process prepares",
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL (postgresql://user@127.0.0.1:5432/db)")
    if not 1 <= args.players <= 1000 or not 1 <= args.rounds <= 50 or not 1 <= args.web_processes <= 8:
        parser.error("bounded: 1..1000 players, at most 50 rounds each, 1..8 web processes")
    placement = args.model_service or ("process" if args.web_processes > 1 else "inprocess")
    if args.web_processes > 1 and placement == "inprocess":
        parser.error("several web processes share one model service: --model-service process")
    if args.prepare_only and args.event_file is None:
        parser.error("--prepare-only keeps the event in --event-file")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()}; load {os.getloadavg()}")
    print(
        f"{args.web_processes} web process(es), model service {placement}; {args.players} x {args.rounds}; "
        f"{args.client} client"
    )
    event: dict | None = None
    if args.event_file is not None and args.event_file.exists():
        event = json.loads(args.event_file.read_text())
    with tempfile.TemporaryDirectory(prefix="arena-prepared-") as tmp, contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        borrow = None
        if args.borrow_stock_from is not None:
            lender = json.loads(args.borrow_stock_from.read_text())["code"]
            borrow = partial(borrow_stock, args.database_url, lender, count=args.players * args.rounds)
            env["ARENA_STOCK_INTERVAL_S"] = "0"
        model_health_url = None
        roots: dict[str, list[int]] = {"load generator": [os.getpid()]}
        if placement == "process":
            url, model = stack.enter_context(running_model_service(Path(tmp), args.torch_threads))
            env["ARENA_MODEL_SERVICE_URL"], model_health_url = url, f"{url}/v1/health"
            roots["model service"] = [model.pid]
        servers = stack.enter_context(
            running_web_processes(args.database_url, Path(tmp), args.web_processes, args.torch_threads, **env)
        )
        bases = [base for base, _ in servers]
        roots["web processes"] = [process.pid for _, process in servers]
        with progress_bars() as progress:
            if event is None:
                event = asyncio.run(
                    prepared_event(bases[0], args.players, args.rounds, args.prepare_timeout, progress, borrow)
                )
                made = args.players * args.rounds
                if "borrowed" in event:
                    print(f"stock: {event['borrowed']} images copied from event {lender}'s, none made")
                else:
                    rate = made / event["prepare_s"]
                    print(f"prepared {made} images in {event['prepare_s']:.1f} s = {rate:.1f} images/s")
                if args.event_file is not None:
                    args.event_file.write_text(json.dumps(event))
            if args.prepare_only:
                print(f"event {event['code']} prepared and left in the lobby; kept in {args.event_file}")
                return 0
            asyncio.run(start_event(bases[0], event))
            print(f"load average before play: {os.getloadavg()}")
            account = CpuAccount(roots, postgres_database=make_url(args.database_url).database).start()
            result = asyncio.run(
                run_level(
                    bases,
                    args.players,
                    args.rounds,
                    args.timeout,
                    progress,
                    event_code=event["code"],
                    model_health_url=model_health_url,
                    bare=args.client == "bare",
                )
            )
            account.stop()
    count_in_database(args.database_url, result)
    rounds, claimed, made = stock_served(args.database_url, event["code"])
    print(report(result))
    print(
        f"  stock: {rounds} rounds in the event, {claimed} of its {made} prepared images claimed: "
        f"{rounds - claimed} rounds not served from the stock"
    )
    print(account.report())
    print(f"load average at the end: {os.getloadavg()}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
