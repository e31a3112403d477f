"""Train the CartPole agent and its replica, measure them clean and under the three attacks, write their cards.

``python -m app.ml.agents.train`` reproduces ``models/cartpole-dqn.*`` and ``models/cartpole-dqn-replica.*``
(checkpoints, JSON and Markdown cards, the plot next to the agent's card). ``--skip-training`` re-measures the
committed checkpoints and keeps their training sections. Runs on one torch thread: it is deterministic there,
and the networks are too small for a second thread to help.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from pathlib import Path
from typing import Any

import gymnasium
import torch
from rich.console import Console

from app.config import PROJECT_ROOT
from app.ml.agents.card import checkpoint_section, read_agent_card, write_agent_card
from app.ml.agents.environment import (
    ACTION_NAMES,
    ENVIRONMENT_ID,
    MAX_EPISODE_STEPS,
    STATE_NAMES,
    STATE_SCALE,
)
from app.ml.agents.evaluation import (
    BOOTSTRAP_RESAMPLES,
    CARD_SEEDS,
    TIMED_BUDGET,
    TIMED_STEPS,
    TIMED_THRESHOLD,
    attack_sweep,
    measure,
)
from app.ml.agents.net import describe, load_agent, parameter_count, save_agent
from app.ml.agents.plot import plot_attacks
from app.ml.agents.trainer import SELECTION_SEEDS, DqnSettings, train_dqn

AGENT_NAME = "cartpole-dqn"
REPLICA_NAME = "cartpole-dqn-replica"
CLEAN_GOAL = 475
DESCRIPTIONS = {
    AGENT_NAME: "DQN balancing CartPole-v1: the agent whose observations the attacks perturb.",
    REPLICA_NAME: "DQN balancing CartPole-v1, trained apart from the agent (other seed, so other data): the "
    "adversary's replica for the black-box policy-induction attack.",
}


def _seed_range(seeds: tuple[int, ...]) -> str:
    return f"{seeds[0]}..{seeds[-1]}"


def machine() -> str:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = names[0] if names else model
    return f"cpu (1 torch thread, {os.cpu_count()} CPU cores, {model})"


def train_section(
    name: str, seed: int, settings: DqnSettings, command: str, models_dir: Path, console: Console
) -> dict[str, Any]:
    result = train_dqn(seed, settings, progress=console.log)
    save_agent(result.agent, models_dir / f"{name}.safetensors")
    return {
        "command": command,
        "seed": seed,
        "algorithm": "DQN with Double-DQN targets (van Hasselt et al. 2016), greedy at evaluation",
        "settings": settings.as_dict(),
        "steps_run": result.steps_run,
        "episodes_run": result.episodes_run,
        "selected_step": result.selected_step,
        "selection_seeds": _seed_range(SELECTION_SEEDS),
        "checks": [{"step": c.step, "mean_return": c.mean_return, "elapsed_s": c.elapsed_s} for c in result.checks],
        "wall_time_s": round(result.wall_time_s, 1),
        "machine": machine(),
        "torch": torch.__version__,
    }


def base_card(name: str, role: str, training: dict[str, Any], models_dir: Path, episodes: int) -> dict[str, Any]:
    agent = load_agent(models_dir / f"{name}.safetensors")
    seeds = CARD_SEEDS[:episodes]
    return {
        "schema_version": 1,
        "name": name,
        "role": role,
        "description": DESCRIPTIONS[name],
        "created": datetime.date.today().isoformat(),
        "environment": {
            "id": ENVIRONMENT_ID,
            "gymnasium": gymnasium.__version__,
            "max_steps": MAX_EPISODE_STEPS,
            "state_names": list(STATE_NAMES),
            "state_scale": list(STATE_SCALE),
            "action_names": list(ACTION_NAMES),
        },
        "architecture": {"net": "QNetwork", "layers": describe(agent), "parameters": parameter_count(agent)},
        "training": training,
        "evaluation": {
            "n": len(seeds),
            "seeds": _seed_range(seeds),
            "goal": CLEAN_GOAL,
            "interval": f"percentile bootstrap of the mean, {BOOTSTRAP_RESAMPLES:,} resamples, seed 0",
            "clean": measure(agent, lambda: None, seeds).as_dict(),
        },
        "checkpoint": checkpoint_section(models_dir, name),
    }


def attack_section(card: dict[str, Any], models_dir: Path, episodes: int, console: Console) -> dict[str, Any]:
    agent = load_agent(models_dir / f"{AGENT_NAME}.safetensors")
    replica = load_agent(models_dir / f"{REPLICA_NAME}.safetensors")
    seeds = CARD_SEEDS[:episodes]
    attacks = {
        "measured": datetime.date.today().isoformat(),
        "n": len(seeds),
        "seeds": _seed_range(seeds),
        "interval": card["evaluation"]["interval"],
        "replica": REPLICA_NAME,
        "parameters": {
            "fgsm": "every step, away from the preferred action",
            "timed": f"threshold {TIMED_THRESHOLD} on the softmax gap, at most {TIMED_STEPS} steps, toward the "
            "least-preferred action",
            "induction": "every step, FGSM on the replica toward the action it values least",
        },
        "timed_budget": TIMED_BUDGET,
        **attack_sweep(agent, replica, seeds, progress=console.log),
        "plot": {"png": f"{AGENT_NAME}-attacks.png", "svg": f"{AGENT_NAME}-attacks.svg"},
    }
    plot_attacks(attacks, card["evaluation"]["clean"], models_dir / f"{AGENT_NAME}-attacks")
    return attacks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.ml.agents.train", description=__doc__.splitlines()[0])
    parser.add_argument("--agent-seed", type=int, default=0)
    parser.add_argument("--replica-seed", type=int, default=1)
    parser.add_argument("--total-steps", type=int, default=DqnSettings.total_steps)
    parser.add_argument("--episodes", type=int, default=len(CARD_SEEDS), help="seeded episodes per figure")
    parser.add_argument("--models-dir", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument("--skip-training", action="store_true", help="re-measure the committed checkpoints")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    console = Console(stderr=True)
    command = f"python -m app.ml.agents.train --agent-seed {args.agent_seed} --replica-seed {args.replica_seed}"
    if args.total_steps != DqnSettings.total_steps:
        command += f" --total-steps {args.total_steps}"
    settings = DqnSettings(total_steps=args.total_steps)
    cards = {}
    for name, role, seed in ((AGENT_NAME, "agent", args.agent_seed), (REPLICA_NAME, "replica", args.replica_seed)):
        if args.skip_training:
            training = read_agent_card(args.models_dir, name)["training"]
        else:
            training = train_section(name, seed, settings, command, args.models_dir, console)
        cards[name] = base_card(name, role, training, args.models_dir, args.episodes)
        clean = cards[name]["evaluation"]["clean"]
        console.log(f"{name}: clean return {clean['mean']:.1f} [{clean['low']:.1f}, {clean['high']:.1f}]")
    cards[AGENT_NAME]["attacks"] = attack_section(cards[AGENT_NAME], args.models_dir, args.episodes, console)
    for card in cards.values():
        write_agent_card(card, args.models_dir)


if __name__ == "__main__":
    main()
