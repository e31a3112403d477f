"""What every recipe writes: the checkpoint (atomically, with its hash in the card) and the card's shared parts.

The checkpoint is written first, then the card carrying its hash: a cut between the two is caught by the hash
check when the opponent loads.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from app.ml.measure.machine import cpu_summary
from app.ml.opponents import cards
from app.ml.opponents.registry import pack_preprocessing
from app.ml.opponents.specs import OpponentSpec
from app.ml.packs import DataPack
from app.ml.training.fitting import one_cycle_recipe

logger = logging.getLogger(__name__)


def net_state(net: nn.Module) -> dict[str, Tensor]:
    """The weights as safetensors stores them: detached, contiguous, on the CPU."""
    return {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}


def write_safetensors(state: dict[str, Tensor], path: Path, metadata: dict[str, str]) -> str:
    """Write ``path`` through a temporary file (an interrupt leaves the old one) and return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(state, str(tmp), metadata=metadata)
        os.chmod(tmp, 0o644)  # safetensors creates the file private; a checkpoint is meant to be shared
        sha256 = cards.sha256_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return sha256


def save_checkpoint(state: dict[str, Tensor], card: dict[str, Any], models_dir: Path, name: str) -> None:
    """``<name>.safetensors``, then the card (JSON and Markdown) carrying its hash."""
    ckpt = cards.checkpoint_path(models_dir, name)
    card["checkpoint"]["sha256"] = write_safetensors(state, ckpt, {"opponent": name, "pack": card["pack"]})
    cards.write_card(card, models_dir, name)
    logger.info("wrote %s and its card", ckpt)


def save_net(net: nn.Module, card: dict[str, Any], models_dir: Path, name: str) -> None:
    save_checkpoint(net_state(net), card, models_dir, name)


def data_section(pack: DataPack, train_size: int, test_size: int) -> dict[str, Any]:
    """The card's ``data`` block: which dataset, where it was read from, and how many images."""
    return {
        "dataset": pack.title,
        "licence": pack.licence,
        "homepage": pack.homepage,
        "debian_package": pack.debian_package,
        "source": str(pack.data_dir),
        "files": [file for _, split in pack.splits for file in (split.images, split.labels)],
        "train_size": train_size,
        "test_size": test_size,
        "image_shape": list(pack.image_shape),
        "class_names": list(pack.class_names),
    }


def card_header(spec: OpponentSpec, pack: DataPack, net: nn.Module, train_size: int, test_size: int) -> dict[str, Any]:
    """The card's first blocks, the same for every net recipe: who, what data, which architecture, preprocessing."""
    return {
        "schema_version": cards.CARD_SCHEMA_VERSION,
        "name": spec.name,
        "pack": pack.name,
        "description": spec.description,
        "differentiable": spec.differentiable,
        "created": datetime.now(UTC).date().isoformat(),
        "data": data_section(pack, train_size, test_size),
        "architecture": {
            "net": type(net).__name__,
            "layers": spec.architecture,
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "preprocessing": pack_preprocessing(pack),
    }


def base_card(
    spec: OpponentSpec, pack: DataPack, net: nn.Module, models_dir: Path, train_size: int = 60_000
) -> dict[str, Any]:
    """The card of a defended opponent before its recipe adds what it measured."""
    return {
        **card_header(spec, pack, net, train_size, 10_000),
        "checkpoint": {"file": cards.checkpoint_path(models_dir, spec.name).name, "sha256": ""},
    }


def provenance() -> dict[str, Any]:
    """The card's record of where it ran: threads, machine and torch (wall times are only comparable with these)."""
    return {"threads": torch.get_num_threads(), "machine": cpu_summary(), "torch_version": torch.__version__}


def command_line(spec: OpponentSpec, seed: int, epochs: int) -> str:
    """The command that reproduces a defended opponent (its epochs only when they differ from the recipe's)."""
    return f"{spec.train_command} --seed {seed}" + (f" --epochs {epochs}" if epochs != spec.epochs else "")


def one_cycle_training_section(
    spec: OpponentSpec, seed: int, epochs: int, batch_size: int, lr: float
) -> dict[str, Any]:
    """The card's ``training`` block of a defended net trained with AdamW, one cycle and the house augmentation."""
    return {
        "command": command_line(spec, seed, epochs),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        **one_cycle_recipe(lr),
        "device": "cpu",
        **provenance(),
    }
