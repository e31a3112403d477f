"""Cost of a CartPole episode through the model service (issue 19), clean and under each attack, side by side.

For each contender (clean, fgsm, timed, induction, and a player's 3 picked steps on the timed attack) it plays the
same seeded episodes three ways, in an order that rotates between repetitions so that other processes' load hits
all alike:

- ``runner``: ``EpisodeRunner.run`` called directly (app/ml/agents plus the contract's arrays);
- ``service``: ``InProcessModelService.run_episode``: the bounded lane, the model worker thread, the event loop;
- ``http``: ``RemoteModelService.run_episode`` against the protocol-v1 server (POST /v1/episodes, JSON wire codec)
  over an in-memory ASGI transport (no sockets: the codec and the HTTP stack, not the network).

Prints medians per episode and per step (ms) and what the service and the wire add over the runner.
Run: ``PYTHONPATH=. .venv/bin/python benchmarks/policy_episodes.py [--episodes 10] [--reps 3] [--budget 0.1]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import httpx
import torch

from app.config import PROJECT_ROOT
from app.ml.service.episode_contracts import EpisodeJob
from app.ml.service.episode_runner import EpisodeRunner
from app.ml.service.in_process import InProcessModelService
from app.modelsvc.client import RemoteModelService
from app.modelsvc.server import create_server_app

SEEDS_FROM = 1000  # the card's seeds (app/ml/agents/evaluation.CARD_SEEDS)


def contenders(budget: float) -> dict[str, dict[str, object]]:
    return {
        "clean": {"attack": "none"},
        "fgsm": {"attack": "fgsm", "budget": budget},
        "timed (K=10)": {"attack": "timed", "budget": budget, "max_attacked_steps": 10},
        "induction": {"attack": "induction", "budget": budget},
        "player's 3 picks": {"attack": "timed", "budget": budget, "max_attacked_steps": 3, "steps": (10, 20, 30)},
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=10, help="seeded episodes per contender, way and repetition")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--budget", type=float, default=0.1, help="L∞ budget on the normalised state")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = PROJECT_ROOT / "models"
    runner = EpisodeRunner(models)
    service = InProcessModelService(opponents=["fashion-cnn"], device="cpu", torch_threads=1, models_dir=models)
    await service.start()
    server = create_server_app(service)
    # The server app's lifespan would start the service again: the client talks to the started one directly.
    remote = RemoteModelService("http://modelsvc.bench", transport=httpx.ASGITransport(app=server))
    await remote.start()
    seeds = range(SEEDS_FROM, SEEDS_FROM + args.episodes)
    jobs = {name: [EpisodeJob(seed=seed, **spec) for seed in seeds] for name, spec in contenders(args.budget).items()}  # type: ignore[arg-type]

    async def direct(job: EpisodeJob) -> int:
        return runner.run(job).total_return

    async def in_process(job: EpisodeJob) -> int:
        return (await service.run_episode(job)).total_return

    async def over_http(job: EpisodeJob) -> int:
        return (await remote.run_episode(job)).total_return

    ways = {"runner": direct, "service": in_process, "http": over_http}
    seconds: dict[tuple[str, str], list[float]] = {(c, w): [] for c in jobs for w in ways}
    steps: dict[str, int] = {}
    attacked: dict[str, float] = {}
    for name, batch in jobs.items():  # warm-up: load the agents on each path, and record steps and attacked steps
        results = [runner.run(job) for job in batch]
        steps[name] = sum(result.total_return for result in results)
        attacked[name] = sum(len(result.attacked_steps) for result in results) / len(results)
        for way in ways.values():
            await way(batch[0])
    load_before = os.getloadavg()
    order = [(c, w) for c in jobs for w in ways]
    for rep in range(args.reps):
        shift = rep % len(order)
        for name, way in order[shift:] + order[:shift]:
            started = time.perf_counter()
            total = 0
            for job in jobs[name]:
                total += await ways[way](job)
            seconds[(name, way)].append(time.perf_counter() - started)
            if total != steps[name]:
                raise SystemExit(f"{name} via {way}: {total} steps, not {steps[name]}: not deterministic")
    load_after = os.getloadavg()
    await remote.stop()
    await service.stop()
    print(
        f"{args.episodes} episodes (seeds {SEEDS_FROM}..{SEEDS_FROM + args.episodes - 1}), budget {args.budget}, "
        f"{args.reps} interleaved repetitions, 1 torch thread; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
    )
    print()
    print(
        "| episode | mean return | attacked steps | runner ms/episode | service ms/episode | http ms/episode | "
        "service ms/step | service − runner ms/episode | http − service ms/episode |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in jobs:
        ms = {way: 1000 * statistics.median(seconds[(name, way)]) / args.episodes for way in ways}
        per_step = 1000 * statistics.median(seconds[(name, "service")]) / steps[name]
        print(
            f"| {name} | {steps[name] / args.episodes:.1f} | {attacked[name]:.1f} | {ms['runner']:.1f} | "
            f"{ms['service']:.1f} | {ms['http']:.1f} | {per_step:.3f} | {ms['service'] - ms['runner']:.1f} | "
            f"{ms['http'] - ms['service']:.1f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
