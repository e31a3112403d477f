"""Opponents: the classifiers players play against, each a net definition plus a checkpoint and a model card.

The checkpoint is plain safetensors (no pickle, so loading a file from ``models/`` cannot run code) and the card
stores its sha256, so a checkpoint replaced without its card, or a training run cut short between the two
writes, is refused with the command that fixes it instead of serving a model whose figures are wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from app.config import get_settings
from app.ml import cards
from app.ml.model import ArenaModel
from app.ml.nets.fashion_cnn import ARCHITECTURE as FASHION_CNN_ARCHITECTURE
from app.ml.nets.fashion_cnn import FashionCNN
from app.ml.packs import get_pack
from app.ml.registry_errors import UnknownName

logger = logging.getLogger(__name__)


class OpponentMissing(Exception):
    """The opponent's checkpoint or card is not in the models folder; the message says how to train it."""


class OpponentCorrupt(ValueError):
    """The checkpoint does not match its card or the net (edited, truncated, or from another architecture)."""


@dataclass(frozen=True)
class OpponentSpec:
    """How to build and train one opponent; the defaults are the ones its committed card was made with."""

    name: str
    pack_name: str
    description: str
    build: Callable[[], nn.Module]
    architecture: str
    epochs: int
    batch_size: int
    lr: float

    @property
    def train_command(self) -> str:
        return f"arena train --pack {self.pack_name}"


_OPPONENTS: dict[str, OpponentSpec] = {
    "fashion-cnn": OpponentSpec(
        name="fashion-cnn",
        pack_name="fashion",
        description="Undefended 4-conv CNN for Fashion-MNIST: accurate on clean images, easy to fool.",
        build=FashionCNN,
        architecture=FASHION_CNN_ARCHITECTURE,
        epochs=8,
        batch_size=128,
        lr=3e-3,
    ),
}

# The opponent `arena train --pack <pack>` trains.
DEFAULT_OPPONENT_FOR_PACK = {"fashion": "fashion-cnn"}


def available_opponents() -> list[str]:
    return sorted(_OPPONENTS)


def opponent_spec(name: str) -> OpponentSpec:
    try:
        return _OPPONENTS[name]
    except KeyError:
        raise UnknownName("opponent", name, _OPPONENTS) from None


def opponent_pack(name: str) -> str:
    return opponent_spec(name).pack_name


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` (the ``ARENA_DEVICE`` default) means CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_opponent(
    name: str = "fashion-cnn", *, device: str | torch.device = "cpu", models_dir: Path | None = None
) -> ArenaModel:
    """Build the opponent's net, load its checkpoint and card, and wrap it in eval mode with frozen weights."""
    spec = opponent_spec(name)
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    ckpt = cards.checkpoint_path(models_dir, name)
    card_file = cards.card_path(models_dir, name)
    for path in (ckpt, card_file):
        if not path.is_file():
            raise OpponentMissing(
                f"opponent {name!r} is not trained: {path} is missing. Train it with `{spec.train_command}` "
                f"(a few minutes on a CPU), or set ARENA_MODELS_DIR to the folder holding it."
            )
    card = cards.read_card(card_file)
    expected_sha = card.get("checkpoint", {}).get("sha256")
    if expected_sha != cards.sha256_file(ckpt):
        raise OpponentCorrupt(
            f"{ckpt} does not match its card {card_file} (sha256 differs): retrain with `{spec.train_command}`"
        )
    target = resolve_device(device)
    net = spec.build()
    try:
        net.load_state_dict(load_file(ckpt, device=str(target)))
    except (SafetensorError, RuntimeError) as exc:
        raise OpponentCorrupt(f"{ckpt} does not fit the {name!r} net: {exc}") from exc
    pack = get_pack(spec.pack_name)
    pre = card["preprocessing"]
    model = ArenaModel(
        net,
        mean=pre["mean"],
        std=pre["std"],
        bounds=(float(pre["bounds"][0]), float(pre["bounds"][1])),
        image_shape=pack.image_shape,
        num_classes=pack.num_classes,
        device=target,
        name=name,
        pack_name=spec.pack_name,
        card=card,
    )
    logger.info("loaded opponent %s from %s on %s", name, ckpt, target)
    return model
