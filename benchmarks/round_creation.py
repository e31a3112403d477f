"""Round creation through the whole server path (route, game rules, model service, database), batched model
service vs one-at-a-time, at 1 and at 32 concurrent players. Prints rounds/s, p50/p95 latency and the ratios.

Both services run side by side in one process and their trials are interleaved, so machine noise hits both alike.
Usage: python benchmarks/round_creation.py [--rounds-per-player 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.config import Settings
from app.db import migrate
from app.main import create_app


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


async def main(rounds_per_player: int, repeats: int, concurrencies: list[int]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="arena-bench-"))
    apps = {}
    for label, max_batch in (("batched", 32), ("one-at-a-time", 1)):
        url = f"sqlite:///{workdir / (label + '.db')}"
        migrate.upgrade(url)
        settings = Settings(
            database_url=url, device="cpu", service_max_batch=max_batch, service_max_wait_ms=2.0, environment="test"
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

        print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
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
        for client in clients.values():
            await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds-per-player", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()
    asyncio.run(main(args.rounds_per_player, args.repeats, args.concurrency))
