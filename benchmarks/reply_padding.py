"""What waiting out black-box attacks costs (app/game/rounds.generate_evenly), and whether it hides success.

A black-box attack stops at its first fooling query, so a round's reply time used to tell the player whether the
machine was fooled. Each job runs through the real model service at the game's round budgets, on images the opponent
gets right when clean, at the staircase's lowest and a middle step. Prints, per attack: the share of rounds that fool
the model, the median reply without and with the wait for fooled and for not-fooled rounds, and the mean wait added.

Usage: python benchmarks/reply_padding.py [--jobs 12] [--opponent fashion-cnn] [--attacks square,nes,hopskipjump]
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
from app.game.rounds import generate_evenly  # noqa: E402
from app.ml.service.contracts import ImageJob, ImageResult  # noqa: E402
from app.ml.service.in_process import InProcessModelService  # noqa: E402
from benchmarks.round_creation import cpu_model  # noqa: E402


class TimedService:
    """The model service, remembering how long its last generate took (the reply time without the wait)."""

    def __init__(self, service: InProcessModelService) -> None:
        self.service = service
        self.last_s = 0.0

    def opponent_info(self, name: str):  # type: ignore[no-untyped-def]
        return self.service.opponent_info(name)

    def opponent_names(self) -> list[str]:
        return self.service.opponent_names()

    def attack_catalog(self):  # type: ignore[no-untyped-def]
        return self.service.attack_catalog()

    async def generate(self, job: ImageJob) -> ImageResult:
        started = time.perf_counter()
        result = await self.service.generate(job)
        self.last_s = time.perf_counter() - started
        return result


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f}" if values else "-"


async def main(args: argparse.Namespace) -> None:
    service = InProcessModelService(opponents=[args.opponent], device="cpu", max_batch=1, torch_threads=args.threads)
    await service.start()
    timed = TimedService(service)
    try:
        info = service.opponent_info(args.opponent)
        staircase = Staircase.from_min_eps(info.min_eps)
        steps = (staircase.eps(0), staircase.eps(staircase.top // 2))
        print(
            f"\nReply time of black-box rounds on {args.opponent}, one image per job, {args.jobs} jobs per attack at "
            f"eps {round(steps[0] * 255)}/255 and {round(steps[1] * 255)}/255; {cpu_model()}, torch threads "
            f"{args.threads}\n"
        )
        print("| attack | fooled | ms fooled, before | ms not fooled, before | ms fooled, after | ms not fooled, after "
              "| mean wait added (ms) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for name in args.attacks.split(","):
            attack = attack_entry(service, name)
            plan = RoundPlan(opponent=args.opponent, attack=name, steps=20)
            before: dict[bool, list[float]] = {True: [], False: []}
            after: dict[bool, list[float]] = {True: [], False: []}
            for trial in range(args.jobs):
                job = new_job(plan, info, round_budget(attack["norm"], steps[trial % 2], info))
                started = time.perf_counter()
                result = await generate_evenly(timed, job)  # type: ignore[arg-type]
                after[result.fooled].append(time.perf_counter() - started)
                before[result.fooled].append(timed.last_s)
            rounds = args.jobs
            added = (sum(map(sum, after.values())) - sum(map(sum, before.values()))) / rounds * 1000
            print(
                f"| {name} | {len(after[True])}/{rounds} | {median_ms(before[True])} | {median_ms(before[False])} "
                f"| {median_ms(after[True])} | {median_ms(after[False])} | {added:.0f} |",
                flush=True,
            )
    finally:
        await service.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--opponent", default="fashion-cnn")
    parser.add_argument("--attacks", default="square,nes,hopskipjump,genattack")
    parser.add_argument("--threads", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
