"""What ``arena train`` calls: pack name in, trained opponent and model card out.

Kept out of the CLI so that it stays a thin Typer wrapper and never needs to know which opponent a pack trains: the
CLI's flags arrive as one :class:`TrainingOptions`, which every recipe takes.
"""

from __future__ import annotations

from typing import Any

from app.ml.errors import UnknownName
from app.ml.opponents.specs import DEFAULT_OPPONENT_FOR_PACK, opponent_spec
from app.ml.training.options import TrainingOptions
from app.ml.training.recipes import train_opponent


def train_pack(pack: str, options: TrainingOptions) -> dict[str, Any]:
    """Train the default opponent of ``pack`` and return its card (for the CLI to summarise)."""
    try:
        name = DEFAULT_OPPONENT_FOR_PACK[pack]
    except KeyError:
        raise UnknownName("trainable pack", pack, DEFAULT_OPPONENT_FOR_PACK) from None
    return train_named(name, options)


def train_named(opponent: str, options: TrainingOptions) -> dict[str, Any]:
    """Train one opponent by name (``arena train --opponent NAME``); epochs, batch size and lr apply to nets only."""
    spec = opponent_spec(opponent)
    if spec.kind == "sklearn" and any(v is not None for v in (options.epochs, options.batch_size, options.lr)):
        raise ValueError(f"{opponent} is a scikit-learn model: --epochs/--batch-size/--lr do not apply to it")
    return train_opponent(opponent, options)


def summary(card: dict[str, Any]) -> str:
    """One line for the terminal after training."""
    if "staircase" not in card:  # defended opponents: their attacks are measured by `arena defense-eval`
        return (
            f"{card['name']}: clean accuracy {card['clean_accuracy']:.2%} on {card['clean_accuracy_n']} test images, "
            f"done in {card['training']['wall_time_s']:.0f} s; wrote its card (measure it with "
            f"`arena defense-eval --opponent {card['name']}`)"
        )
    return (
        f"{card['name']}: clean accuracy {card['clean_accuracy']:.2%} on {card['clean_accuracy_n']} test images, "
        f"staircase min eps {card['staircase']['min_eps_255']}/255, "
        f"trained in {card['training']['wall_time_s']:.0f} s; wrote {card['checkpoint']['file']} and its card"
    )
