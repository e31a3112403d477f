"""One greedy client against 20 honest players, on the in-process model service (no HTTP, no database).

Phase 1, quiet: 20 honest clients each play ``--rounds`` default rounds (PGD-20 on fashion-cnn, the game's default
round, app/game/rounds.py), one at a time, back to back. Phase 2, flood: the same, while one greedy client (from
the first answered honest round on: the flood hits a room at play) keeps 64 expensive jobs going at once
(HopSkipJump at the round's 500 queries against fashion-defgan: ~1,540 compute units, 77 default rounds' worth,
app/ml/service/cost.py), resubmitting each as soon as it is answered or refused. Phase 3: the flood again with the
per-client budget lifted (the global one stays): what the fair queue alone does. When the honest players are done
the greedy client goes away, and its queued jobs are dropped unrun. Prints the honest players' new-round latency
(p50, p95, max) and busy refusals, and what the greedy client got, side by side. A refusal is counted and the round
retried after 50 ms (a hostile client ignores Retry-After).

Usage: python benchmarks/model_flood.py [--rounds 5] [--honest 20] [--greedy 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.errors import ServiceBusy  # noqa: E402
from app.game.rounds import RoundPlan, new_job  # noqa: E402
from app.ml.service.contracts import ImageJob  # noqa: E402
from app.ml.service.cost import job_units  # noqa: E402
from app.ml.service.in_process import InProcessModelService  # noqa: E402
from benchmarks.round_creation import cpu_model, percentile  # noqa: E402

HONEST_OPPONENT = "fashion-cnn"
GREEDY_OPPONENT = "fashion-defgan"
RETRY_S = 0.05
GREEDY_COLUMNS = "greedy answered | greedy refused"


@dataclasses.dataclass
class Tally:
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    refused: int = 0
    answered: int = 0


async def honest_player(
    service: InProcessModelService, client: str, rounds: int, tally: Tally, playing: asyncio.Event
) -> None:
    info = service.opponent_info(HONEST_OPPONENT)
    plan = RoundPlan(opponent=HONEST_OPPONENT)
    for _ in range(rounds):
        job = dataclasses.replace(new_job(plan, info, 8 / 255), client=client)
        started = time.perf_counter()
        while True:
            try:
                await service.generate(job)
                break
            except ServiceBusy:
                tally.refused += 1
                await asyncio.sleep(RETRY_S)
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        playing.set()


async def greedy_slot(service: InProcessModelService, job: ImageJob, stop: asyncio.Event, tally: Tally) -> None:
    while not stop.is_set():
        try:
            await service.generate(job)
            tally.answered += 1
        except ServiceBusy:
            tally.refused += 1
            await asyncio.sleep(RETRY_S)


async def phase(service: InProcessModelService, args: argparse.Namespace, flood: bool) -> tuple[Tally, Tally, float]:
    honest, greedy, stop, playing = Tally(), Tally(), asyncio.Event(), asyncio.Event()
    info = service.opponent_info(GREEDY_OPPONENT)
    greedy_job = dataclasses.replace(
        new_job(RoundPlan(opponent=GREEDY_OPPONENT, attack="hopskipjump"), info, 1.0), client="greedy"
    )
    started = time.perf_counter()
    players = asyncio.gather(
        *(honest_player(service, f"honest-{k}", args.rounds, honest, playing) for k in range(args.honest))
    )
    await playing.wait()  # the flood starts while the honest players play
    slots = [asyncio.create_task(greedy_slot(service, greedy_job, stop, greedy)) for _ in range(args.greedy * flood)]
    await players
    elapsed = time.perf_counter() - started
    stop.set()
    for slot in slots:  # the greedy client goes away: its queued jobs are dropped, not run
        slot.cancel()
    await asyncio.gather(*slots, return_exceptions=True)
    return honest, greedy, elapsed


def row(name: str, honest: Tally, greedy: Tally, elapsed: float) -> str:
    lat = honest.latencies_ms
    return (
        f"| {name} | {len(lat)} | {statistics.median(lat):.0f} | {percentile(lat, 0.95):.0f} | {max(lat):.0f} | "
        f"{honest.refused} | {greedy.answered} | {greedy.refused} | {elapsed:.1f} |"
    )


async def main(args: argparse.Namespace) -> None:
    service = InProcessModelService(
        opponents=[HONEST_OPPONENT, GREEDY_OPPONENT], device="cpu", torch_threads=args.threads
    )
    await service.start()
    try:
        info = service.opponent_info(GREEDY_OPPONENT)
        greedy_units = job_units(new_job(RoundPlan(opponent=GREEDY_OPPONENT, attack="hopskipjump"), info, 1.0))
        honest_units = job_units(new_job(RoundPlan(opponent=HONEST_OPPONENT), info, 8 / 255))
        quiet = await phase(service, args, flood=False)
        flood = await phase(service, args, flood=True)
        service.admission.per_client_units = float("inf")
        unbudgeted = await phase(service, args, flood=True)
    finally:
        await service.stop()
    print(
        f"\n{args.honest} honest clients x {args.rounds} default rounds ({honest_units:g} units each) on "
        f"{cpu_model()}, {args.threads} torch thread(s); flood: {args.greedy} concurrent HopSkipJump-500 jobs against "
        f"{GREEDY_OPPONENT} ({greedy_units:.0f} units each) from one client\n"
    )
    print(f"| phase | honest rounds | p50 ms | p95 ms | max ms | honest busy refusals | {GREEDY_COLUMNS} | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(row("quiet", *quiet))
    print(row("flood", *flood))
    print(row("flood, no per-client budget (fair queue alone)", *unbudgeted))
    quiet_p95 = percentile(quiet[0].latencies_ms, 0.95)
    for name, result in (("flood", flood), ("flood without the per-client budget", unbudgeted)):
        print(f"honest p95, {name} / quiet: {percentile(result[0].latencies_ms, 0.95) / quiet_p95:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--honest", type=int, default=20)
    parser.add_argument("--greedy", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
