"""benchmarks/prepared_event_load.py against several checkouts of the project, alternating, side by side.

Each run uses the checkout's own server and load script on a fresh PostgreSQL database (created before, dropped
after), so a before/after comparison on a shared machine can alternate (before, after, after, before) and print
the load average beside each run.

Usage: python benchmarks/prepared_event_ab.py --checkout before=/tmp/before --checkout after=. \
           --order before,after,after,before [--players 50] [--rounds 10] \
           [--server-url postgresql://postgres@127.0.0.1:5432/postgres] [--prefix bench_ab]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

FIGURES = {
    "rounds/s": re.compile(r"acknowledged in [\d.]+ s = ([\d.]+) rounds/s"),
    "new round p50/p95/p99 ms": re.compile(r"new round\s+p50/p95/p99 ms: ([\d /]+)"),
    "answer p50/p95/p99 ms": re.compile(r"answer\s+p50/p95/p99 ms: ([\d /]+)"),
    "non-2xx": re.compile(r"non-2xx replies: (\d+)"),
    "model images": re.compile(r"model service: (\d+) images"),
    "stored": re.compile(r"database: (.*)$", re.MULTILINE),
}


def admin(server_url: str, statement: str) -> None:
    engine = create_engine(
        server_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def one_run(checkout: Path, database_url: str, players: int, rounds: int) -> tuple[str, int]:
    command = [sys.executable, "benchmarks/prepared_event_load.py", "--database-url", database_url]
    command += ["--players", str(players), "--rounds", str(rounds)]
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, timeout=1800)
    return done.stdout + done.stderr, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", action="append", required=True, help="label=path of a checkout")
    parser.add_argument("--order", required=True, help="labels in the order to run, comma-separated")
    parser.add_argument("--players", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--prefix", default="bench_ab", help="scratch database names: <prefix>_<n>")
    args = parser.parse_args()
    checkouts = {label: Path(path).resolve() for label, _, path in (item.partition("=") for item in args.checkout)}
    order = args.order.split(",")
    if unknown := [label for label in order if label not in checkouts]:
        parser.error(f"no --checkout for {unknown}")
    rows = []
    for number, label in enumerate(order, start=1):
        name = f"{args.prefix}_{number}"
        admin(args.server_url, f'DROP DATABASE IF EXISTS "{name}"')
        admin(args.server_url, f'CREATE DATABASE "{name}"')
        load_before = os.getloadavg()[0]
        started = time.strftime("%H:%M:%S", time.gmtime())
        try:
            output, code = one_run(
                checkouts[label], args.server_url.rsplit("/", 1)[0] + "/" + name, args.players, args.rounds
            )
        finally:
            admin(args.server_url, f'DROP DATABASE IF EXISTS "{name}"')
        found = {
            key: (match.group(1).strip() if (match := pattern.search(output)) else "?")
            for key, pattern in FIGURES.items()
        }
        rows.append(
            [str(number), label, started, f"{load_before:.1f} → {os.getloadavg()[0]:.1f}", *found.values(), str(code)]
        )
        print(f"run {number} {label}: {found}", file=sys.stderr)
    header = ["run", "code", "start UTC", "load", *FIGURES, "exit"]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
