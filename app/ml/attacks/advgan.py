"""AdvGAN (Xiao et al. 2018, "Generating Adversarial Examples with Adversarial Networks").

A generator network, trained beforehand against the opponent with the opponent's gradients, maps each image to a
perturbation direction in [-1, 1]; the attack scales it by the sample's eps and clips to the pixel bounds. No
gradient and no iteration at attack time: one generator forward pass per batch, which makes it the cheapest way
to serve a crowd. The generator is a committed checkpoint (``models/<generator>.safetensors`` plus its card),
trained by ``arena train-advgan``; it is loaded once per device and cached.
"""

from __future__ import annotations

import copy
import logging
import threading
import weakref
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from app.config import get_settings
from app.ml.attacks.base import Attack, AttackParams
from app.ml.attacks.inputs import AttackBatch
from app.ml.model import ArenaModel
from app.ml.nets.advgan import AdvGANGenerator
from app.ml.opponents import cards

logger = logging.getLogger(__name__)

DEFAULT_GENERATOR = "advgan-fashion-cnn"


class GeneratorMissing(FileNotFoundError):
    """The generator's checkpoint or card is not in the models folder; the message names the training command."""


class GeneratorCorrupt(ValueError):
    """The checkpoint does not match its card or the generator net."""


def train_command(generator: str) -> str:
    """The command that trains ``generator`` (named ``advgan-<opponent>``)."""
    opponent = generator.removeprefix("advgan-") if generator.startswith("advgan-") else "<opponent>"
    return f"arena train-advgan --opponent {opponent} --seed 0"


class AdvGANParams(AttackParams):
    generator: str = Field(
        DEFAULT_GENERATOR,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Name of the trained generator: models/<generator>.safetensors and its card.",
    )


_cache: dict[tuple[str, str, str, int, int], tuple[AdvGANGenerator, dict[str, Any]]] = {}
_cache_lock = threading.Lock()
# Serving copies (inference_generator), kept for as long as the loaded generator they were made from.
_inference_cache: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


def load_generator(
    name: str = DEFAULT_GENERATOR, *, device: str | torch.device = "cpu", models_dir: Path | None = None
) -> tuple[AdvGANGenerator, dict[str, Any]]:
    """The generator ``name`` on ``device`` (eval mode, frozen) and its card; cached per file version and device.

    The cache key includes the checkpoint's size and modification time, so retraining in a running process is
    picked up; the checkpoint's sha256 is checked against the card once per load, as for opponents.
    """
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    ckpt = cards.checkpoint_path(models_dir, name)
    card_file = cards.card_path(models_dir, name)
    for path in (ckpt, card_file):
        if not path.is_file():
            raise GeneratorMissing(
                f"AdvGAN generator {name!r} is not trained: {path} is missing. Train it with "
                f"`{train_command(name)}` (a few minutes on a CPU), or set ARENA_MODELS_DIR to the folder holding it."
            )
    stat = ckpt.stat()
    target = torch.device(device)
    key = (str(ckpt.resolve()), str(target), name, stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
        card = cards.read_card(card_file)
        if card.get("checkpoint", {}).get("sha256") != cards.sha256_file(ckpt):
            raise GeneratorCorrupt(
                f"{ckpt} does not match its card {card_file} (sha256 differs): retrain with `{train_command(name)}`"
            )
        arch = card.get("architecture", {})
        net = AdvGANGenerator(channels=int(arch.get("channels", 1)), width=int(arch.get("width", 16)))
        try:
            net.load_state_dict(load_file(ckpt, device=str(target)))
        except (SafetensorError, RuntimeError) as exc:
            raise GeneratorCorrupt(f"{ckpt} does not fit the AdvGAN generator net: {exc}") from exc
        net.to(target).eval().requires_grad_(False)
        # Drop stale versions of this file on this device, so retraining does not grow the cache.
        for old in [k for k in _cache if k[:3] == key[:3]]:
            del _cache[old]
        _cache[key] = (net, card)
        logger.info("loaded AdvGAN generator %s from %s on %s", name, ckpt, target)
        return net, card


def inference_generator(
    name: str = DEFAULT_GENERATOR, *, device: str | torch.device = "cpu", models_dir: Path | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_generator`'s net made for serving: every BatchNorm folded into the convolution before it and the
    weights in channels-last memory. Same outputs up to float rounding (tests/ml/attacks/test_advgan.py), and the one
    forward pass AdvGAN is made of runs about a quarter faster on this CPU (benchmarks/RESULTS.md)."""
    net, card = load_generator(name, device=device, models_dir=models_dir)
    with _cache_lock:
        fast = _inference_cache.get(net)
        if fast is None:
            fast = fold_batch_norms(copy.deepcopy(net)).to(memory_format=torch.channels_last)
            _inference_cache[net] = fast
    return fast, card


def fold_batch_norms(module: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm2d that directly follows a (transposed) convolution in a Sequential into it."""
    for child in module.children():
        fold_batch_norms(child)
    if isinstance(module, nn.Sequential):
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if isinstance(bn, nn.BatchNorm2d) and isinstance(conv, nn.Conv2d | nn.ConvTranspose2d):
                module[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                module[i + 1] = nn.Identity()
    return module


class AdvGAN(Attack, name="advgan", params=AdvGANParams, threat_model="white-box"):
    def generator_net(self, model: ArenaModel) -> tuple[nn.Module, dict[str, Any]]:
        """The trained generator (and its card) for ``model``'s device; the trainer overrides this to measure a
        generator before it is written to disk."""
        return inference_generator(self.params.generator, device=model.device)

    def run(self, model: ArenaModel, batch: AttackBatch) -> Tensor:
        net, card = self.generator_net(model)
        shape = card.get("data", {}).get("image_shape")
        if shape is not None and tuple(shape) != tuple(model.image_shape):
            raise ValueError(
                f"generator {self.params.generator!r} makes images shaped {tuple(shape)}, but {model.name or 'the'}"
                f" model takes {tuple(model.image_shape)}; train one for it with `arena train-advgan`"
            )
        with torch.no_grad():
            direction = net(batch.images)
            return torch.clamp(batch.images + batch.eps * direction, batch.low, batch.high)
