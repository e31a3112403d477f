"""The ceiling of this machine for the prepared event's load shape: the same load generator (httpx, one asyncio
process, benchmarks/players_load.py's connection limits) with --clients closed-loop clients and no pause, against the
cheapest route of the same app (`GET /livez`: no database, no model), on 1 and on more web processes sharing one
PostgreSQL database (round-robin, as benchmarks/prepared_event_load.py places its players; the model service runs
as its own `arena modelsvc`, as there, so no web process loads torch).

For each count of web processes it prints, side by side: requests/s, latency p50/p95/p99, non-2xx, and the CPU
seconds of the load generator, the web processes and everything else on the machine, with the web processes' CPU
milliseconds per request. With Little's law (clients = throughput × mean latency) it prints what --clients players
with no pause need for a mean latency of --target-ms (the goal's p95 bounds the mean from above only loosely, so
this is the least they need), against what the machine gives even for an empty route.

Usage: python benchmarks/web_ceiling.py --database-url postgresql://postgres@127.0.0.1:5432/db
       [--clients 200] [--seconds 20] [--web-processes 1 2] [--path /livez] [--target-ms 150]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_accounting import CpuAccount  # noqa: E402
from players_load import machine, percentile, running_web_processes  # noqa: E402
from pool_latency import running_model_service  # noqa: E402

REQUESTS_PER_ROUND = 3  # new round, its image, the answer (benchmarks/players_load.py's play)


@dataclass
class Ceiling:
    web_processes: int
    generator: str = "httpx"
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    elapsed_s: float = 0.0
    cpu: CpuAccount | None = None

    @property
    def per_s(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


class RawClient:
    """One keep-alive HTTP/1.1 connection that sends a GET and reads the status line, headers and a
    Content-Length body, nothing more: a generator cheaper than httpx, to tell its cost from the server's."""

    def __init__(self, base: str) -> None:
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
        await self.reader.readexactly(length)
        return int(lines[0].split()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


async def closed_loop(
    bases: list[str], clients: int, path: str, seconds: float, warmup_s: float, account: CpuAccount, raw: bool = False
) -> Ceiling:
    """``clients`` clients, client i on base i mod N, each sending its next request as soon as the last one came
    back, for ``warmup_s`` (not counted) and then ``seconds``, over which ``account`` counts the CPU."""
    result = Ceiling(web_processes=len(bases))
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10, keepalive_expiry=2.0)
    counting = asyncio.Event()
    done = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        pools = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=b, limits=limits, timeout=60.0)) for b in bases
        ]

        async def send(http: httpx.AsyncClient, own: RawClient | None) -> int:
            try:
                return await own.get(path) if own is not None else (await http.get(path)).status_code
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError):
                if own is not None:  # a fresh connection next time
                    await own.close()
                    own.writer = own.reader = None
                return -1

        async def client(index: int) -> None:
            http = pools[index % len(pools)]
            own = RawClient(bases[index % len(bases)]) if raw else None
            try:
                while not done.is_set():
                    started = time.perf_counter()
                    status = await send(http, own)
                    if counting.is_set() and not done.is_set():
                        result.latencies_s.append(time.perf_counter() - started)
                        result.statuses[status] += 1
                        result.errors += status == -1
            finally:
                if own is not None:
                    await own.close()

        tasks = [asyncio.create_task(client(i)) for i in range(clients)]
        await asyncio.sleep(warmup_s)
        counting.set()
        account.start()
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        done.set()
        result.elapsed_s = time.perf_counter() - started
        result.cpu = account.stop()
        await asyncio.gather(*tasks)
    return result


def table(results: list[Ceiling], clients: int, target_ms: float) -> str:
    ms = 1000.0
    rows: list[tuple[str, list[str]]] = [
        ("requests/s", [f"{r.per_s:.0f}" for r in results]),
        ("rounds/s at 3 requests a round", [f"{r.per_s / REQUESTS_PER_ROUND:.0f}" for r in results]),
        (
            "latency p50 / p95 / p99 ms",
            [
                f"{percentile(r.latencies_s, 0.5) * ms:.0f} / {percentile(r.latencies_s, 0.95) * ms:.0f} / "
                f"{percentile(r.latencies_s, 0.99) * ms:.0f}"
                for r in results
            ],
        ),
        ("non-2xx / transport errors", [f"{r.non_2xx - r.errors} / {r.errors}" for r in results]),
    ]
    for group in ("load generator", "web processes", "model service", "PostgreSQL backends"):
        rows.append((f"CPU s: {group}", [f"{r.cpu.used_s.get(group, 0.0):.1f}" if r.cpu else "-" for r in results]))
    rows.append(
        (
            "CPU s: other work on the machine",
            [f"{max(0.0, r.cpu.machine_busy_s - sum(r.cpu.used_s.values())):.1f}" if r.cpu else "-" for r in results],
        )
    )
    rows.append(
        (
            "web CPU ms per request",
            [
                f"{r.cpu.used_s.get('web processes', 0.0) / len(r.latencies_s) * ms:.2f}"
                if r.cpu and r.latencies_s
                else "-"
                for r in results
            ],
        )
    )
    rows.append(
        (
            "generator CPU ms per request",
            [
                f"{r.cpu.used_s.get('load generator', 0.0) / len(r.latencies_s) * ms:.2f}"
                if r.cpu and r.latencies_s
                else "-"
                for r in results
            ],
        )
    )
    header = ["", *[f"{r.web_processes} web proc., {r.generator} client" for r in results]]
    widths = [max(len(row[0]) for row in rows), *[max(24, len(h)) for h in header[1:]]]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip([name, *cells], widths, strict=True)) for name, cells in rows]
    need = clients / (target_ms / ms)
    lines.append(
        f"Little's law: {clients} closed-loop clients with no pause at a mean latency of {target_ms:.0f} ms need "
        f"{need:,.0f} requests/s ({need / REQUESTS_PER_ROUND:,.0f} rounds/s); this machine gave "
        + ", ".join(f"{r.per_s:,.0f}" for r in results)
        + " requests/s for an empty route, which for these clients means a mean latency of "
        + ", ".join(f"{clients / r.per_s * ms:,.0f}" if r.per_s else "-" for r in results)
        + " ms"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ARENA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/arena_bench"),
        help="PostgreSQL database the web processes start on (migrated; this route never touches it)",
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per row")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--web-processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--path", default="/livez")
    parser.add_argument("--target-ms", type=float, default=150.0)
    parser.add_argument(
        "--generator",
        choices=["httpx", "raw", "both"],
        default="both",
        help="httpx: the players' load generator (benchmarks/players_load.py); raw: a bare keep-alive HTTP/1.1 client, "
        "to tell the generator's cost from the server's",
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL")
    if not 1 <= args.clients <= 1000 or not 1 <= max(args.web_processes) <= 8 or not 1 <= args.seconds <= 120:
        parser.error("bounded: 1..1000 clients, 1..8 web processes, 1..120 s")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()}; load {os.getloadavg()}")
    print(
        f"{args.clients} closed-loop clients, GET {args.path}, {args.seconds:.0f} s per row after {args.warmup:.0f} s"
    )
    results: list[Ceiling] = []
    with tempfile.TemporaryDirectory(prefix="arena-ceiling-") as tmp:
        with running_model_service(Path(tmp)) as (url, model):
            for count in args.web_processes:
                env = {"ARENA_MODEL_SERVICE_URL": url}
                with running_web_processes(args.database_url, Path(tmp), count, **env) as servers:
                    roots = {
                        "load generator": [os.getpid()],
                        "web processes": [process.pid for _, process in servers],
                        "model service": [model.pid],
                    }
                    bases = [base for base, _ in servers]
                    load_before = os.getloadavg()
                    for generator in ["httpx", "raw"] if args.generator == "both" else [args.generator]:
                        account = CpuAccount(roots, postgres_database=make_url(args.database_url).database)
                        result = asyncio.run(
                            closed_loop(
                                bases, args.clients, args.path, args.seconds, args.warmup, account, generator == "raw"
                            )
                        )
                        result.generator = generator
                        print(f"{count} web process(es), {generator}: load average {load_before} -> {os.getloadavg()}")
                        load_before = os.getloadavg()
                        results.append(result)
    print(table(results, args.clients, args.target_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
