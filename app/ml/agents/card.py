"""The agents' model cards: ``models/<name>.json`` and its Markdown twin, in the style of the classifiers' cards.

Every figure says how it was measured: which seeds, how many episodes, which attack with which parameters, and
how the interval was made, so that ``python -m app.ml.agents.train`` reproduces it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.ml.opponents.cards import atomic_write_bytes, sha256_file

CARD_SCHEMA_VERSION = 1
ATTACK_TITLES = {
    "fgsm": "FGSM every step (Huang et al. 2017)",
    "timed": "strategically-timed (Lin et al. 2017)",
    "induction": "policy induction via the replica (Behzadan & Munir 2017)",
}


def write_agent_card(card: dict[str, Any], models_dir: Path) -> None:
    """Write ``<name>.json`` and the ``<name>.md`` rendered from it, each atomically."""
    name = card["name"]
    text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(models_dir / f"{name}.json", text.encode("utf-8"))
    atomic_write_bytes(models_dir / f"{name}.md", render_agent_markdown(card).encode("utf-8"))


def read_agent_card(models_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((models_dir / f"{name}.json").read_text(encoding="utf-8"))


def checkpoint_section(models_dir: Path, name: str) -> dict[str, str]:
    path = models_dir / f"{name}.safetensors"
    return {"file": path.name, "format": "safetensors", "sha256": sha256_file(path)}


def _interval(row: dict[str, Any]) -> str:
    return f"{row['mean']:.1f} [{row['low']:.1f}, {row['high']:.1f}]"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _environment_lines(environment: dict[str, Any]) -> list[str]:
    scales = ", ".join(
        f"{name} / {scale}" for name, scale in zip(environment["state_names"], environment["state_scale"], strict=True)
    )
    return [
        "## Environment",
        "",
        f"- `{environment['id']}` from gymnasium {environment['gymnasium']} (pure Python, no rendering), "
        f"at most {environment['max_steps']} steps, reward 1 per step",
        f"- Actions: {', '.join(environment['action_names'])}",
        f"- The agent sees the normalised state, each coordinate divided by its scale: {scales}",
        "- Every attack budget is an L∞ radius on this normalised state",
        "",
    ]


def _training_lines(training: dict[str, Any]) -> list[str]:
    settings = training["settings"]
    checks = ", ".join(f"{check['step']}: {check['mean_return']:.1f}" for check in training["checks"])
    return [
        "## Training",
        "",
        f"- Command: `{training['command']}`",
        f"- Seed {training['seed']}; {training['algorithm']}; {training['steps_run']:,} environment steps "
        f"({training['episodes_run']} episodes) of at most {settings['total_steps']:,}",
        f"- Adam, learning rate {settings['learning_rate']}, batch {settings['batch_size']}, replay buffer "
        f"{settings['buffer_size']:,}, gamma {settings['gamma']}, Huber loss, gradient norm clipped at "
        f"{settings['gradient_clip']}, target network copied every {settings['target_update_every']} steps",
        f"- Exploration: epsilon from {settings['epsilon_start']} to {settings['epsilon_end']} over "
        f"{settings['epsilon_decay_steps']:,} steps; learning from step {settings['learning_starts']:,}",
        f"- Model selection: greedy return on selection seeds {training['selection_seeds']} (apart from the card's) "
        f"every {settings['check_every']:,} steps; kept step {training['selected_step']:,} (step: return {checks})",
        f"- Wall time {training['wall_time_s']:.0f} s on {training['machine']}, torch {training['torch']}",
        "",
    ]


def _attack_lines(attacks: dict[str, Any]) -> list[str]:
    lines = [
        "## Under attack",
        "",
        f"Measured {attacks['measured']} on the card's {attacks['n']} seeded episodes (seeds {attacks['seeds']}); "
        f"mean return with its 95% interval ({attacks['interval']}). Replica: `{attacks['replica']}`. "
        "Up to the limit: episodes that kept the pole up for all 500 steps. "
        "Induced: of the steps where the attack named a target action, the share where the agent took it.",
        "",
        "### Return against budget",
        "",
        "| attack | parameters | budget (L∞) | n | return [95% interval] | up to the limit | attacked steps | "
        "attacked share | induced |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in attacks["by_budget"]:
        lines.append(
            f"| {ATTACK_TITLES[row['attack']]} | {attacks['parameters'][row['attack']]} | {row['budget']} | "
            f"{row['n']} | {_interval(row)} | {row['at_time_limit']} | {row['attacked_steps']:.1f} | "
            f"{_share(row['attacked_share'])} | {_share(row['induced_share'])} |"
        )
    lines += [
        "",
        f"### Return against the share of attacked steps (strategically-timed, budget {attacks['timed_budget']})",
        "",
        "| at most N steps | n | return [95% interval] | up to the limit | attacked steps | attacked share | induced |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in attacks["by_attacked_steps"]:
        lines.append(
            f"| {row['max_attacked_steps']} | {row['n']} | {_interval(row)} | {row['at_time_limit']} | "
            f"{row['attacked_steps']:.1f} | "
            f"{_share(row['attacked_share'])} | {_share(row['induced_share'])} |"
        )
    lines += ["", f"![return under attack]({attacks['plot']['png']}) (also `{attacks['plot']['svg']}`)", ""]
    return lines


def render_agent_markdown(card: dict[str, Any]) -> str:
    architecture, evaluation = card["architecture"], card["evaluation"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"*Generated from `{card['name']}.json` by `app/ml/agents/card.py`; do not edit by hand.*",
        "",
        card["description"],
        "",
        f"- Role: {card['role']}",
        "- Differentiable: yes (white-box attacks apply)",
        "",
        *_environment_lines(card["environment"]),
        "## Architecture",
        "",
        f"- `{architecture['net']}`: {architecture['layers']}",
        f"- Parameters: {architecture['parameters']:,}",
        "- Input: the normalised state (4 values); output: one Q-value per action; the agent acts greedily",
        "",
        *_training_lines(card["training"]),
        "## Return",
        "",
        f"Clean return over {evaluation['n']} seeded episodes (seeds {evaluation['seeds']}, greedy): "
        f"**{_interval(evaluation['clean'])}** (mean [95% interval, {evaluation['interval']}]); "
        f"{evaluation['clean']['at_time_limit']} of {evaluation['n']} episodes kept the pole up to the time limit; "
        f"goal ≥ {evaluation['goal']} of 500.",
        "",
    ]
    if "attacks" in card:
        lines += _attack_lines(card["attacks"])
    checkpoint = card["checkpoint"]
    lines += ["## Checkpoint", "", f"`{checkpoint['file']}` ({checkpoint['format']}), sha256 `{checkpoint['sha256']}`"]
    return "\n".join(lines) + "\n"
