"""Loading an opponent (app/ml/opponents/specs.py names them): its net definition, checkpoint and model card.

The checkpoint is plain safetensors (no pickle, so loading a file from ``models/`` cannot run code) and the card
stores its sha256, so a checkpoint replaced without its card, or a training run cut short between the two
writes, is refused with the command that fixes it instead of serving a model whose figures are wrong.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from app.config import get_settings
from app.ml.defenses.certified import CertifiedModel
from app.ml.defenses.defense_gan import DefenseGAN
from app.ml.defenses.jpeg import JPEGCompression
from app.ml.defenses.magnet import MagNet
from app.ml.defenses.squeezing import FeatureSqueezing
from app.ml.model import ArenaModel
from app.ml.nets.fashion_gan import FashionGenerator
from app.ml.nets.magnet_ae import MagNetAutoencoder
from app.ml.opponents import cards
from app.ml.opponents.specs import OpponentSpec, opponent_spec
from app.ml.packs import DataPack, get_pack

logger = logging.getLogger(__name__)


class OpponentMissing(Exception):
    """The opponent's checkpoint or card is not in the models folder; the message says how to train it."""


class OpponentCorrupt(ValueError):
    """The checkpoint does not match its card or the net (edited, truncated, or from another architecture)."""


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
    if spec.wraps:
        return _load_wrapper(spec, device=device, models_dir=models_dir)
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
    try:
        state = load_file(ckpt, device=str(target))
        if spec.from_state is not None:
            net = spec.build_net(state)
        else:
            net = spec.build_net()
            net.load_state_dict(state)
    except (SafetensorError, RuntimeError, ValueError) as exc:
        raise OpponentCorrupt(f"{ckpt} does not fit the {name!r} net: {exc}") from exc
    pack = get_pack(spec.pack_name)
    model_class = ArenaModel
    if spec.defense == "ibp":
        model_class = CertifiedModel
    model = pack_model(
        net,
        pack,
        target,
        name,
        model_class,
        card,
        preprocessing=card["preprocessing"],
        differentiable=spec.differentiable,
    )
    logger.info("loaded opponent %s from %s on %s", name, ckpt, target)
    return model


def pack_preprocessing(pack: DataPack) -> dict[str, Any]:
    """How a net of ``pack`` sees its input, as its card records it: pixels in [0, 1], then the pack's mean/std."""
    return {"bounds": [0.0, 1.0], "mean": list(pack.mean), "std": list(pack.std)}


def pack_model(
    net: nn.Module,
    pack: DataPack,
    device: torch.device,
    name: str,
    wrapper: type[ArenaModel] = ArenaModel,
    card: dict[str, Any] | None = None,
    *,
    preprocessing: dict[str, Any] | None = None,
    differentiable: bool = True,
) -> ArenaModel:
    """``net`` behind ``preprocessing`` (a card's; by default the pack's own), a copy: the caller's net is never
    changed by it."""
    pre = pack_preprocessing(pack) if preprocessing is None else preprocessing
    return wrapper(
        net,
        mean=pre["mean"],
        std=pre["std"],
        bounds=(float(pre["bounds"][0]), float(pre["bounds"][1])),
        image_shape=pack.image_shape,
        num_classes=pack.num_classes,
        device=device,
        name=name,
        pack_name=pack.name,
        card=card,
        differentiable=differentiable,
    )


def _load_wrapper(spec: OpponentSpec, *, device: str | torch.device, models_dir: Path) -> ArenaModel:
    """A defense around another opponent's checkpoint: its card must name the wrapped checkpoint's sha256."""
    card_file = cards.card_path(models_dir, spec.name)
    if not card_file.is_file():
        raise OpponentMissing(
            f"opponent {spec.name!r} is not calibrated: {card_file} is missing. Calibrate it with "
            f"`{spec.train_command}` (seconds; needs {spec.wraps!r} trained), or set ARENA_MODELS_DIR."
        )
    base = load_opponent(spec.wraps, device=device, models_dir=models_dir)
    card = cards.read_card(card_file)
    # A wrapper with weights of its own (MagNet's autoencoder) pins the wrapped net under "wrapped_checkpoint".
    pinned = card.get("wrapped_checkpoint") or card.get("checkpoint", {})
    if pinned.get("sha256") != base.card.get("checkpoint", {}).get("sha256"):
        raise OpponentCorrupt(
            f"{card_file} was calibrated on another {spec.wraps!r} checkpoint: recalibrate with `{spec.train_command}`"
        )
    if spec.defense == "jpeg":
        return JPEGCompression(base, quality=int(card["transform"]["quality"]), name=spec.name, card=card)
    if spec.defense == "feature-squeezing":
        detector = card["detector"]
        return FeatureSqueezing(
            base, bits=int(detector["bits"]), threshold=float(detector["threshold"]), name=spec.name, card=card
        )
    if spec.defense == "magnet":
        return _load_magnet(spec, base, card, models_dir)
    if spec.defense == "defense-gan":
        return _load_defense_gan(spec, base, card, device=device, models_dir=models_dir)
    raise ValueError(f"opponent {spec.name!r}: unknown wrapping defense {spec.defense!r}")


def _load_defense_gan(
    spec: OpponentSpec, base: ArenaModel, card: dict[str, Any], *, device: str | torch.device, models_dir: Path
) -> ArenaModel:
    """Defense-GAN also has a checkpoint of its own, the generator, pinned by ``card["generator"]["sha256"]``."""
    path = cards.checkpoint_path(models_dir, spec.name)
    if not path.is_file():
        raise OpponentMissing(f"{path} (the Defense-GAN generator) is missing: train it with `{spec.train_command}`")
    if card.get("generator", {}).get("sha256") != cards.sha256_file(path):
        raise OpponentCorrupt(f"{path} does not match its card (sha256 differs): retrain with `{spec.train_command}`")
    generator = FashionGenerator(int(card["generator"]["latent_dim"]))
    try:
        generator.load_state_dict(load_file(path, device="cpu"))
    except (SafetensorError, RuntimeError) as exc:
        raise OpponentCorrupt(f"{path} does not fit the Defense-GAN generator: {exc}") from exc
    projection = card["projection"]
    return DefenseGAN(
        base,
        generator.to(resolve_device(device)),
        steps=int(projection["steps"]),
        restarts=int(projection["restarts"]),
        step_size=float(projection["step_size"]),
        seed=int(projection["seed"]),
        name=spec.name,
        card=card,
    )


def _load_magnet(spec: OpponentSpec, base: ArenaModel, card: dict[str, Any], models_dir: Path) -> ArenaModel:
    """MagNet's autoencoder comes from its own checkpoint, which must match the sha256 in its card."""
    ckpt = cards.checkpoint_path(models_dir, spec.name)
    if not ckpt.is_file():
        raise OpponentMissing(
            f"opponent {spec.name!r} is not trained: {ckpt} is missing. Train it with `{spec.train_command}` "
            f"(minutes on a CPU), or set ARENA_MODELS_DIR to the folder holding it."
        )
    if card.get("checkpoint", {}).get("sha256") != cards.sha256_file(ckpt):
        raise OpponentCorrupt(
            f"{ckpt} does not match its card {cards.card_path(models_dir, spec.name)} (sha256 differs): "
            f"retrain with `{spec.train_command}`"
        )
    detector = card["detector"]
    autoencoder = MagNetAutoencoder(channels=int(card["autoencoder"]["channels"]))
    try:
        autoencoder.load_state_dict(load_file(ckpt))
    except (SafetensorError, RuntimeError, ValueError) as exc:
        raise OpponentCorrupt(f"{ckpt} does not fit the {spec.name!r} autoencoder: {exc}") from exc
    return MagNet(
        base,
        autoencoder,
        threshold=float(detector["threshold"]),
        norm=int(detector["norm"]),
        name=spec.name,
        card=card,
    )
