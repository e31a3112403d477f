"""Transfer attack (Papernot, McDaniel & Goodfellow 2016, "Transferability in Machine Learning"; Szegedy et al.
2014 first saw adversarial images fool other networks).

Craft the adversarial image with a white-box attack on a *surrogate* model the attacker owns, then show it to
the target unchanged. The target is never queried while crafting: its only forward pass is the base class's
success check on the final images, which is the arena's measurement, not the attacker's. That makes it the
one attack that works on any target, including non-differentiable ones such as a random forest.
"""

from __future__ import annotations

import threading

import torch
from pydantic import Field, field_validator
from torch import Tensor

from app.config import get_settings
from app.ml.attacks.base import Attack, AttackParams
from app.ml.attacks.inputs import AttackBatch
from app.ml.model import ArenaModel
from app.ml.opponents.registry import load_opponent
from app.ml.opponents.specs import available_opponents, opponent_spec

_SURROGATES: dict[tuple[str, str, str], ArenaModel] = {}
_SURROGATES_LOCK = threading.Lock()


class TransferParams(AttackParams):
    surrogate: str = Field(
        "fashion-cnn", min_length=1, description="Opponent the image is crafted on (must be differentiable)."
    )
    base: str = Field("pgd", min_length=1, description="White-box L∞ attack run on the surrogate.")
    steps: int = Field(20, ge=1, le=10_000, description="Steps of the base attack (ignored by one-step fgsm).")

    @field_validator("surrogate")
    @classmethod
    def _known_differentiable_opponent(cls, value: str) -> str:
        if value not in available_opponents():
            raise ValueError(f"unknown surrogate {value!r}; choose one of: {', '.join(available_opponents())}")
        if not opponent_spec(value).differentiable:
            usable = [n for n in available_opponents() if opponent_spec(n).differentiable]
            raise ValueError(f"surrogate {value!r} is not differentiable; choose one of: {', '.join(usable)}")
        return value

    @field_validator("base")
    @classmethod
    def _white_box_linf(cls, value: str) -> str:
        usable = [
            name
            for name, attack in sorted(Attack.catalogue.items())
            if attack.threat_model == "white-box" and attack.norm == "linf"
        ]
        if value not in usable:
            raise ValueError(f"base must be a white-box L∞ attack, one of: {', '.join(usable)}; got {value!r}")
        return value


def surrogate_model(name: str, device: torch.device) -> ArenaModel:
    """The surrogate opponent, loaded once per (name, device, models folder) and kept for later calls."""
    key = (name, str(device), str(get_settings().models_dir))
    with _SURROGATES_LOCK:
        model = _SURROGATES.get(key)
        if model is None:
            model = load_opponent(name, device=device)
            _SURROGATES[key] = model
    return model


class TransferAttack(Attack, name="transfer", params=TransferParams, threat_model="transfer"):
    def run(self, model: ArenaModel, batch: AttackBatch) -> Tensor:
        surrogate = surrogate_model(self.params.surrogate, model.device)
        if (surrogate.image_shape, surrogate.num_classes) != (model.image_shape, model.num_classes):
            raise ValueError(
                f"surrogate {surrogate.name!r} takes {surrogate.image_shape} images and {surrogate.num_classes} "
                f"classes, the target {model.image_shape} and {model.num_classes}; pick a surrogate of the same pack"
            )
        base = self.catalogue[self.params.base]
        params = {"steps": self.params.steps} if "steps" in base.Params.model_fields else {}
        images = batch.images.clamp(*surrogate.bounds)
        crafted = base(**params)(surrogate, images, batch.labels, batch.eps.flatten(), generator=batch.generator)
        return crafted.adversarial.to(batch.images.device)
