"""Round creation through the whole server path (route, game rules, model service, database), batched model
service vs one-at-a-time, at 1, 32 and 64 concurrent players. Prints rounds/s, p50/p95 latency and the ratios.
Then the same comparison for generation alone: N concurrent ``generate()`` calls straight to each model service
(no HTTP, no database), images/s and the ratio.

Both services run side by side in one process and their trials are interleaved, so machine noise hits both alike.
Usage: python benchmarks/round_creation.py [--rounds-per-player 4] [--repeats 3] [--concurrency 1 32 64]
       [--max-batch 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.config import Settings
from app.db import migrate
from app.game.plan import RoundPlan, new_job
from app.main import create_app


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def one_trial(client: httpx.AsyncClient, tokens: list[str], rounds_per_player: int) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def player(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(rounds_per_player):
            started = time.perf_counter()
            response = await client.post("/api/v1/rounds", headers=headers)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(player(token) for token in tokens))
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


async def generation_trial(service: object, settings: Settings, concurrency: int) -> float:
    """``concurrency`` jobs sent at once straight to the model service; images per second."""
    info = service.opponent_info(settings.opponent)  # type: ignore[attr-defined]
    plan = RoundPlan(opponent=settings.opponent, attack=settings.attack, steps=settings.attack_steps)
    jobs = [new_job(plan, info, info.min_eps) for _ in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(*(service.generate(job) for job in jobs))  # type: ignore[attr-defined]
    return concurrency / (time.perf_counter() - started)


async def main(rounds_per_player: int, repeats: int, concurrencies: list[int], max_batch: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="arena-bench-"))
    apps = {}
    for label, batch_cap in (("batched", max_batch), ("one-at-a-time", 1)):
        url = f"sqlite:///{workdir / (label + '.db')}"
        migrate.upgrade(url)
        settings = Settings(
            database_url=url,
            device="cpu",
            service_max_batch=batch_cap,
            service_max_wait_ms=2.0,
            environment="test",
            opponents=Settings().opponent,  # load only the opponent rounds use
            ready_rounds=0,  # every round attacked on demand: this measures batching, not rounds made ahead
        )
        apps[label] = create_app(settings)
    async with (
        apps["batched"].router.lifespan_context(apps["batched"]),
        apps["one-at-a-time"].router.lifespan_context(apps["one-at-a-time"]),
    ):
        clients = {
            label: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
            for label, app in apps.items()
        }
        tokens: dict[str, list[str]] = {}
        for label, client in clients.items():
            tokens[label] = []
            for i in range(max(concurrencies)):
                response = await client.post("/api/v1/players", json={"nickname": f"bench{i}"})
                tokens[label].append(response.json()["token"])
            await one_trial(client, tokens[label][:4], 1)  # warm-up

        print(
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {cpu_model()}, {os.cpu_count()} cores, "
            f"python {platform.python_version()}; batched max batch {max_batch}, max wait 2 ms"
        )
        print(f"{'players':>7} {'service':>14} {'rounds/s':>9} {'p50 ms':>8} {'p95 ms':>8}")
        for concurrency in concurrencies:
            rates: dict[str, list[float]] = {label: [] for label in clients}
            lat: dict[str, list[float]] = {label: [] for label in clients}
            for _ in range(repeats):
                for label, client in clients.items():  # interleaved
                    rate, latencies = await one_trial(client, tokens[label][:concurrency], rounds_per_player)
                    rates[label].append(rate)
                    lat[label].extend(latencies)
            for label in clients:
                print(
                    f"{concurrency:>7} {label:>14} {statistics.median(rates[label]):>9.1f} "
                    f"{percentile(lat[label], 0.5) * 1000:>8.1f} {percentile(lat[label], 0.95) * 1000:>8.1f}"
                )
            ratio = statistics.median(rates["batched"]) / statistics.median(rates["one-at-a-time"])
            print(f"{concurrency:>7} {'ratio':>14} {ratio:>9.2f}x  (batched rounds/s / one-at-a-time rounds/s)")

        print("generation alone (concurrent generate() calls to the model service, no HTTP, no database)")
        print(f"{'requests':>8} {'service':>14} {'images/s':>9}")
        for concurrency in concurrencies:
            images: dict[str, list[float]] = {label: [] for label in apps}
            for _ in range(repeats):
                for label, app in apps.items():  # interleaved
                    images[label].append(
                        await generation_trial(app.state.model_service, app.state.settings, concurrency)
                    )
            for label in apps:
                print(f"{concurrency:>8} {label:>14} {statistics.median(images[label]):>9.1f}")
            ratio = statistics.median(images["batched"]) / statistics.median(images["one-at-a-time"])
            print(f"{concurrency:>8} {'ratio':>14} {ratio:>9.2f}x  (batched images/s / one-at-a-time images/s)")
        for client in clients.values():
            await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds-per-player", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32, 64])
    parser.add_argument("--max-batch", type=int, default=64, help="the batched service's ARENA_SERVICE_MAX_BATCH")
    args = parser.parse_args()
    asyncio.run(main(args.rounds_per_player, args.repeats, args.concurrency, args.max_batch))
