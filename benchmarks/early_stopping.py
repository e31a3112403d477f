"""Early stopping on the shown image against fixed-step PGD-20, side by side (issue 15, Measure).

Part 1, the attack through the model service (no HTTP): the same eligible test images of the opponent, the same
seeds and budgets, attacked by PGD-20 with every step and by PGD-20 with ``stop_on_shown`` (each image stops at the
first step whose rounded, in-budget image fools the model), in the service's batches (``run_batch``). The two run
interleaved, batch by batch, so the machine's other work hits both alike. Per budget: the fool rate of the shown
image, the model's mean confidence in its wrong answer (fooled images), the mean margin (best wrong class's
probability minus the true class's, every image: > 0 fooled), the mean steps, and images/s.

Part 2, plain play over HTTP (benchmarks/players_load.py's server and players): --players players on PostgreSQL,
no event, every round made on demand, each playing --rounds rounds with no pause; a fresh `arena serve` per run with
ARENA_ATTACK_EARLY_STOP=false (PGD-20, today) or true, alternated --repeats times (off, on, off, on, ...). Rounds/s,
new-round p50/p95, and the load average around each run.

Usage: python benchmarks/early_stopping.py [--images 256] [--budgets 4 6 8 12] [--batch 32]
       [--http --database-url postgresql://postgres@127.0.0.1:5432/arena_bench --players 200 --rounds 5 --repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {"PGD-20, every step": False, "PGD-20, stop on shown": True}


@dataclass
class Tally:
    fooled: int = 0
    images: int = 0
    wrong_confidence: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    seconds: float = 0.0


async def attack_side_by_side(
    images: int, budgets: list[int], batch: int, opponent: str
) -> dict[tuple[str, int], Tally]:
    from app.ml.service.contracts import ImageJob
    from app.ml.service.in_process import InProcessModelService

    service = InProcessModelService(opponents=[opponent], device="cpu", torch_threads=1, max_batch=batch)
    await service.start()
    tallies: dict[tuple[str, int], Tally] = {}
    try:
        eligible = service.opponent_info(opponent).eligible_indices[:images]
        for grey in budgets:
            for start in range(0, len(eligible), batch):
                chunk = eligible[start : start + batch]
                for name, stop in VARIANTS.items():
                    params = {"steps": 20, "random_start": True, **({"stop_on_shown": True} if stop else {})}
                    jobs = [
                        ImageJob(opponent, "pgd", ImageJob.freeze_params(params), index, grey / 255, seed=index)
                        for index in chunk
                    ]
                    started = time.perf_counter()
                    results = await service.run_batch(jobs)
                    tally = tallies.setdefault((name, grey), Tally())
                    tally.seconds += time.perf_counter() - started
                    for result in results:
                        probs = result.adversarial_probs
                        wrong = max(p for label, p in enumerate(probs) if label != result.true_label)
                        tally.images += 1
                        tally.fooled += result.fooled
                        tally.margins.append(wrong - probs[result.true_label])
                        tally.steps.append(result.steps if result.steps is not None else 20)
                        if result.fooled:
                            tally.wrong_confidence.append(probs[result.adversarial_label])
    finally:
        await service.stop()
    return tallies


def attack_table(tallies: dict[tuple[str, int], Tally], budgets: list[int]) -> str:
    lines = [
        "| eps | variant | fooled (shown) | mean confidence of the wrong answer | mean margin | mean steps "
        "| images/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for grey in budgets:
        for name in VARIANTS:
            t = tallies[(name, grey)]
            confidence = statistics.fmean(t.wrong_confidence) if t.wrong_confidence else float("nan")
            lines.append(
                f"| {grey}/255 | {name} | {t.fooled}/{t.images} ({t.fooled / t.images:.1%}) | {confidence:.3f} | "
                f"{statistics.fmean(t.margins):+.3f} | {statistics.fmean(t.steps):.1f} | {t.images / t.seconds:.1f} |"
            )
    for name in VARIANTS:
        every = [t for (n, _), t in tallies.items() if n == name]
        images, seconds = sum(t.images for t in every), sum(t.seconds for t in every)
        lines.append(f"all budgets, {name}: {images / seconds:.1f} images/s")
    return "\n".join(lines)


def http_side_by_side(database_url: str, players: int, rounds: int, repeats: int, timeout_s: float) -> list[str]:
    from players_load import count_in_database, percentile, report, run_level, running_server
    from rich.progress import Progress

    lines = []
    for repeat in range(repeats):
        for name, stop in VARIANTS.items():
            load_before = os.getloadavg()
            with tempfile.TemporaryDirectory(prefix="arena-early-") as tmp:
                env = {"ARENA_ATTACK_EARLY_STOP": "true" if stop else "false"}
                with running_server(database_url, Path(tmp), 1, **env) as base, Progress(transient=True) as progress:
                    result = asyncio.run(run_level(base, players, rounds, timeout_s, progress))
            count_in_database(database_url, result)
            load_after = os.getloadavg()
            lines.append(
                f"run {repeat + 1}, {name}: {result.rounds_per_s:.1f} rounds/s, new round p50/p95 "
                f"{percentile(result.new_round_s, 0.5) * 1000:.0f} / {percentile(result.new_round_s, 0.95) * 1000:.0f}"
                f" ms, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
            )
            print(lines[-1], flush=True)
            print(report(result), flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="eligible test images per budget")
    parser.add_argument("--budgets", type=int, nargs="+", default=[4, 6, 8, 12], help="L∞ budgets in grey levels")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--opponent", default="fashion-cnn")
    parser.add_argument("--skip-attack", action="store_true", help="only part 2")
    parser.add_argument("--http", action="store_true", help="part 2: plain play over HTTP on PostgreSQL")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ARENA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/arena_bench"),
    )
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per HTTP run before it is cancelled")
    args = parser.parse_args()
    if not 1 <= args.images <= 2000 or not 1 <= args.players <= 500 or not 1 <= args.rounds <= 50:
        parser.error("bounded: at most 2,000 images, 500 players and 50 rounds each")
    import torch

    torch.set_num_threads(1)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {os.getloadavg()}; 1 torch thread")
    if not args.skip_attack:
        tallies = asyncio.run(attack_side_by_side(args.images, args.budgets, args.batch, args.opponent))
        print(attack_table(tallies, args.budgets), flush=True)
        print(f"load average after part 1: {os.getloadavg()}", flush=True)
    if args.http:
        if not args.database_url.startswith("postgresql"):
            parser.error("--database-url must be a PostgreSQL URL")
        http_side_by_side(args.database_url, args.players, args.rounds, args.repeats, args.timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
