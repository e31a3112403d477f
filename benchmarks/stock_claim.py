"""The stock claim's statement on PostgreSQL with a big, mostly served stock (issue 15, item 4): EXPLAIN ANALYZE of
the claim's ``SELECT ... FOR UPDATE SKIP LOCKED`` and its median wall time over 20 runs, on --rows images of one
scratch key of which --served are claimed. The rows are inserted and deleted again; run it on a migrated database.

Usage: python benchmarks/stock_claim.py --database-url postgresql://postgres@127.0.0.1:5432/arena_bench
       [--rows 4000] [--served 3600]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psycopg

KEY = "k" * 64  # no real key is 64 k's (keys are sha256 hex digests)
INSERT = (
    "insert into stock_images (stock_key, pack, opponent, attack, attack_params, eps, image_index, seed, true_label,"
    " clean_label, clean_confidence, model_label, model_confidence, model_probs, linf, clean_png, adversarial_png,"
    " claimed_at, made_at, fixed, norm, condition) values (%s, 'fashion', 'fashion-cnn', 'pgd', '{}', 0.02, 1, 1, 1,"
    " 1, 0.9, 1, 0.9, '[0.1]', 0.02, %s, %s, case when %s then now() else null end, now(), false, 'linf',"
    " 'adversarial')"
)
CLAIM = (
    "select id from stock_images where stock_key = %s and claimed_at is null and fixed = false order by id limit 1"
    " for update skip locked"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("ARENA_BENCH_POSTGRES_URL", ""))
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--served", type=int, default=3600)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql") or not 0 <= args.served < args.rows <= 50_000:
        parser.error("a PostgreSQL --database-url, and 0 <= served < rows <= 50,000")
    png = b"\x89PNG" + b"x" * 600
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute("delete from stock_images where stock_key = %s", (KEY,))
        try:
            with conn.cursor() as cursor:
                cursor.executemany(INSERT, [(KEY, png, png, i < args.served) for i in range(args.rows)])
            conn.execute("analyze stock_images")
            times = []
            for _ in range(20):
                started = time.perf_counter()
                conn.execute(CLAIM, (KEY,)).fetchall()
                times.append(time.perf_counter() - started)
            plan = conn.execute("explain analyze " + CLAIM, (KEY,)).fetchall()
        finally:
            conn.execute("delete from stock_images where stock_key = %s", (KEY,))
    print("\n".join(row[0] for row in plan))
    print(
        f"claim select median {statistics.median(times) * 1000:.2f} ms over 20; {args.rows} images of the key, "
        f"{args.served} served; load average {os.getloadavg()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
