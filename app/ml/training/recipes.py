"""Which recipe trains which opponent: the registry's spec names it (``kind`` for scikit-learn models, else
``defense``, else a plain net), and every recipe takes the spec and one :class:`TrainingOptions`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.ml.opponents.specs import OpponentSpec, opponent_spec
from app.ml.training.calibration import calibrate_jpeg, calibrate_squeezing
from app.ml.training.certified import train_certified
from app.ml.training.defense_gan import train_defense_gan
from app.ml.training.distillation import train_distilled
from app.ml.training.magnet import train_magnet
from app.ml.training.options import TrainingOptions
from app.ml.training.pgd_at import train_pgd_at
from app.ml.training.plain import train_plain
from app.ml.training.scikit import train_sklearn

Recipe = Callable[[OpponentSpec, TrainingOptions], dict[str, Any]]

# Defended opponents, by the spec's ``defense``.
DEFENSE_RECIPES: dict[str, Recipe] = {
    "pgd-at": train_pgd_at,
    "distillation": train_distilled,
    "ibp": train_certified,
    "magnet": train_magnet,
    "defense-gan": train_defense_gan,
    "feature-squeezing": calibrate_squeezing,
    "jpeg": calibrate_jpeg,
}


def recipe_for(spec: OpponentSpec) -> Recipe:
    if spec.kind == "sklearn":
        return train_sklearn
    if not spec.defense:
        return train_plain
    try:
        return DEFENSE_RECIPES[spec.defense]
    except KeyError:
        raise ValueError(
            f"opponent {spec.name!r} is not trained by a defense recipe (defense={spec.defense!r})"
        ) from None


def train_opponent(name: str = "fashion-cnn", options: TrainingOptions | None = None) -> dict[str, Any]:
    """Train (or calibrate) opponent ``name``, write its checkpoint and card, and return the card."""
    spec = opponent_spec(name)
    return recipe_for(spec)(spec, options or TrainingOptions())
