"""Where one painter's stroke spends its time (issue #21): the real app in process (ASGI transport, no sockets), one
painter sending S strokes one after another, under cProfile, with the SQL statements each stroke runs counted.

Starts the app (fashion-cnn, SQLite in a temporary folder, migrated first) with `create_app`, joins one player,
starts a brush painting and sends ``--strokes`` random strokes (as benchmarks/paint_load.py does). Prints the wall
time per stroke (p50/mean), the SQL statements per stroke (by kind), and cProfile's top functions by cumulative
time on the event loop's thread (the model's forward pass runs on the model service's worker thread: it shows as
the wait in ``classify``). The machine's smallest attack starts with the painting, as in a real room (on its own
thread at nice 19).

Usage: python benchmarks/paint_profile.py [--strokes 200] [--top 35] [--torch-threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.paint_load import percentile, random_stroke  # noqa: E402


async def profile(strokes: int, top: int) -> None:
    from sqlalchemy import event

    from app.config import get_settings
    from app.db import migrate
    from app.main import create_app

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    app = create_app(settings)
    statements: Counter[str] = Counter()
    async with app.router.lifespan_context(app):
        engine = app.state.database.engine.sync_engine

        def count(conn: object, cursor: object, statement: str, *args: object) -> None:
            statements[statement.split(None, 1)[0].upper()] += 1

        event.listen(engine, "before_cursor_execute", count)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            joined = await client.post("/api/v1/players", json={"nickname": "profiled"})
            headers = {"Authorization": f"Bearer {joined.json()['token']}"}
            painting = (await client.post("/api/v1/paint", headers=headers, json={"tool": "brush"})).json()
            rng = random.Random(0)
            walls: list[float] = []
            statements.clear()
            profiler = cProfile.Profile()
            sent = 0
            cpu_started = time.process_time()
            while sent < strokes:
                started = time.perf_counter()
                profiler.enable()
                reply = await client.post(str(painting["strokes_url"]), headers=headers, json=random_stroke(rng))
                profiler.disable()
                walls.append(time.perf_counter() - started)
                sent += 1
                if reply.status_code != 200:
                    raise RuntimeError(f"stroke {sent}: {reply.status_code} {reply.text}")
                if reply.json()["status"] != "painting":  # fooled: a new painting (not profiled)
                    painting = (await client.post("/api/v1/paint", headers=headers, json={"tool": "brush"})).json()
            cpu_s = time.process_time() - cpu_started
    print(f"# paint_profile: {strokes} strokes of one painter, in process, SQLite")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print(
        f"per stroke: p50 {1000 * percentile(walls, 50):.1f} ms, mean {1000 * sum(walls) / len(walls):.1f} ms, "
        f"p95 {1000 * percentile(walls, 95):.1f} ms"
    )
    print(f"process CPU per stroke (every thread, the profiler's overhead included): {1000 * cpu_s / strokes:.1f} ms")
    per = {kind: round(n / strokes, 2) for kind, n in statements.most_common()}
    print(f"SQL statements per stroke: {sum(statements.values()) / strokes:.2f} {per}")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(r"app/", top)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=int, default=200)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ.update(
            ARENA_DATABASE_URL=f"sqlite:///{Path(folder) / 'profile.db'}",
            ARENA_SECRET_KEY="paint-profile-secret",
            ARENA_ENVIRONMENT="test",
            ARENA_DEVICE="cpu",
            ARENA_TORCH_THREADS=str(args.torch_threads),
            ARENA_OPPONENTS="fashion-cnn",
            # strokes flat out, faster than the stroke rate limits let a person
            ARENA_RATE_LIMIT_STROKES_PER_PLAYER="1000000/minute",
            ARENA_RATE_LIMIT_STROKES_PER_ADDRESS="1000000/minute",
        )
        asyncio.run(profile(args.strokes, args.top))


if __name__ == "__main__":
    main()
