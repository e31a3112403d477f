"""What one round costs with each attack, at the budgets the game gives it (app/game/plan.py ROUND_ATTACK_PARAMS).

Each attack runs through the real model service (the same batching worker a round uses), one image per job, on
images the opponent gets right when clean, at the staircase's lowest and a middle step. Prints, per attack:
ms per round (median of the jobs), the share of rounds where the shown image fools the model, median queries for
black-box attacks, and the ratio of its time to PGD-20's (the default round) measured in the same run, interleaved,
so that machine noise hits every attack alike.

Usage: python benchmarks/round_attacks.py [--jobs 12] [--opponent fashion-cnn] [--attacks pgd,square,...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.game.catalogue import attack_entry  # noqa: E402
from app.game.difficulty import Staircase  # noqa: E402
from app.game.plan import RoundPlan, new_job, round_budget  # noqa: E402
from app.ml.service.in_process import InProcessModelService  # noqa: E402
from benchmarks.round_creation import cpu_model  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    service = InProcessModelService(opponents=[args.opponent], device="cpu", max_batch=1, torch_threads=args.threads)
    await service.start()
    try:
        info = service.opponent_info(args.opponent)
        staircase = Staircase.from_min_eps(info.min_eps)
        steps = (staircase.eps(0), staircase.eps(staircase.top // 2))
        names = args.attacks.split(",") if args.attacks else [a["name"] for a in service.attack_catalog()]
        names = [name for name in names if name != "pgd"]
        timings: dict[str, list[float]] = {name: [] for name in ["pgd", *names]}
        fooled: dict[str, list[bool]] = {name: [] for name in timings}
        queries: dict[str, list[int]] = {name: [] for name in timings}
        skipped: dict[str, str] = {}
        for trial in range(args.jobs):
            eps = steps[trial % 2]
            for name in timings:
                if name in skipped:
                    continue
                attack = attack_entry(service, name)
                plan = RoundPlan(opponent=args.opponent, attack=name, steps=20)
                job = new_job(plan, info, round_budget(attack["norm"], eps, info))
                started = time.perf_counter()
                try:
                    result = await service.generate(job)
                except Exception as error:  # an attack whose checkpoint is missing, say: report it, go on
                    skipped[name] = f"{type(error).__name__}: {error}"
                    continue
                timings[name].append((time.perf_counter() - started) * 1000)
                fooled[name].append(result.fooled)
                if result.queries is not None:
                    queries[name].append(result.queries)
            print(f"trial {trial + 1}/{args.jobs} done", file=sys.stderr, flush=True)
        pgd_ms = statistics.median(timings["pgd"])
        print(
            f"\nRound attacks on {args.opponent}, one image per job, {args.jobs} jobs each at eps "
            f"{round(steps[0] * 255)}/255 and {round(steps[1] * 255)}/255 (L2 attacks: the matching L2 budget); "
            f"{cpu_model()}, torch threads {args.threads}\n"
        )
        print("| attack | round params | ms per round (median) | × PGD-20 | fooled | median queries |")
        print("|---|---|---|---|---|---|")
        for name, values in timings.items():
            if name in skipped:
                print(f"| {name} | - | not run: {skipped[name]} | | | |")
                continue
            params = RoundPlan(opponent=args.opponent, attack=name, steps=20).attack_params()
            median_ms = statistics.median(values)
            q = f"{statistics.median(queries[name]):.0f}" if queries[name] else "-"
            rate = sum(fooled[name]) / len(fooled[name])
            print(
                f"| {name} | {params or 'defaults'} | {median_ms:.0f} | {median_ms / pgd_ms:.2f} | {rate:.0%} | {q} |"
            )
    finally:
        await service.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--opponent", default="fashion-cnn")
    parser.add_argument("--attacks", default="")
    parser.add_argument("--threads", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
