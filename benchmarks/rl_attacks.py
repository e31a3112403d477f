"""Cost of a CartPole episode, clean and under each observation attack, side by side.

Each contender plays the same seeded episodes (the card's first seeds) with the committed agent and replica;
repetitions are interleaved in rotating order so that CPU contention from other processes hits all alike. The cost
per episode depends on how long the pole stays up, so the cost per step is printed too: it is what an attack adds
to each decision (one forward and one backward pass on the agent or its replica; the timed attack also a forward
to read the agent's preference).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/rl_attacks.py [--episodes 10] [--reps 3] [--budget 0.1]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from app.config import PROJECT_ROOT
from app.ml.agents.episodes import run_episode
from app.ml.agents.evaluation import CARD_SEEDS, attack_factories
from app.ml.agents.net import load_agent
from app.ml.agents.train import AGENT_NAME, REPLICA_NAME


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=10, help="seeded episodes per contender and repetition")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--budget", type=float, default=0.1, help="L∞ budget on the normalised state")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = PROJECT_ROOT / "models"
    agent = load_agent(models / f"{AGENT_NAME}.safetensors")
    replica = load_agent(models / f"{REPLICA_NAME}.safetensors")
    contenders = {"clean": lambda: None, **attack_factories(agent, replica, args.budget)}
    seeds = CARD_SEEDS[: args.episodes]
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    steps: dict[str, int] = {}
    attacked: dict[str, int] = {}
    load_before = os.getloadavg()
    names = list(contenders)
    for rep in range(args.reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            start = time.perf_counter()
            episodes = [run_episode(agent, seed, contenders[name]()) for seed in seeds]
            seconds[name].append(time.perf_counter() - start)
            steps[name] = sum(episode.total_return for episode in episodes)
            attacked[name] = sum(episode.attacked_steps for episode in episodes)
    load_after = os.getloadavg()
    print(
        f"{args.episodes} episodes (seeds {seeds[0]}..{seeds[-1]}), budget {args.budget}, {args.reps} interleaved "
        f"repetitions, 1 torch thread; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print()
    print("| run | mean return | attacked steps per episode | ms per episode (median) | ms per step (median) |")
    print("|---|---|---|---|---|")
    for name in contenders:
        median = statistics.median(seconds[name])
        print(
            f"| {name} | {steps[name] / args.episodes:.1f} | {attacked[name] / args.episodes:.1f} | "
            f"{1000 * median / args.episodes:.1f} | {1000 * median / steps[name]:.3f} |"
        )


if __name__ == "__main__":
    main()
