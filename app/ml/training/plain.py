"""Train an opponent, measure it, and write its checkpoint and model card.

Everything random is seeded inside :func:`train_opponent` (under ``torch.random.fork_rng``, so the caller's
global RNG state is untouched), and nothing is written until training and measuring have finished: an
interrupted run leaves the previous checkpoint and card exactly as they were.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn

from app.config import get_settings
from app.ml.measure.evaluation import (
    ROBUSTNESS_ATTACKS,
    ROBUSTNESS_EPS,
    clean_accuracy,
    evaluate_robustness,
    find_min_effective_eps,
    progress_bar,
)
from app.ml.model import ArenaModel
from app.ml.opponents import cards
from app.ml.opponents.registry import resolve_device
from app.ml.opponents.specs import OpponentSpec, opponent_spec
from app.ml.packs import DataPack, get_pack

logger = logging.getLogger(__name__)

MAX_SHIFT = 2
AUGMENTATION = f"random horizontal flip, random shift of up to {MAX_SHIFT} px in each direction (zero fill)"
WEIGHT_DECAY = 5e-4


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal flip and a random per-image shift: cheap, and worth about a point of test accuracy."""
    b, _, h, w = images.shape
    flip = torch.rand(b, generator=generator) < 0.5
    images = torch.where(flip.view(b, 1, 1, 1), images.flip(3), images)
    padded = F.pad(images, (MAX_SHIFT,) * 4)
    dy = torch.randint(0, 2 * MAX_SHIFT + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * MAX_SHIFT + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    return padded[torch.arange(b)[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None], rows, cols]


def _machine() -> str:
    """CPU model and core count, so a wall time in a card can be compared with one measured elsewhere."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores, {model}"


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


def hyperparameters(
    spec: OpponentSpec, epochs: int | None, batch_size: int | None, lr: float | None
) -> tuple[int, int, float]:
    """The run's epochs, batch size and learning rate: the caller's, else the spec's (its card's) defaults."""
    epochs = spec.epochs if epochs is None else epochs
    batch_size = spec.batch_size if batch_size is None else batch_size
    lr = spec.lr if lr is None else lr
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}")
    return epochs, batch_size, lr


def train_opponent(
    name: str = "fashion-cnn",
    *,
    epochs: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    lr: float | None = None,
    device: str | torch.device = "cpu",
    models_dir: Path | None = None,
    data_dir: Path | None = None,
    progress: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train ``name`` from scratch, measure it, save ``<models_dir>/<name>.safetensors`` and its card.

    ``None`` for epochs/batch_size/lr means the opponent's defaults (the values its committed card used);
    ``threads`` sets torch's intra-op threads for the run and restores the previous value afterwards.
    Returns the model card.
    """
    spec = opponent_spec(name)
    if spec.kind == "sklearn":
        from app.ml.training.scikit import train_sklearn_opponent

        return train_sklearn_opponent(
            name, seed=seed, models_dir=models_dir, data_dir=data_dir, progress=progress, threads=threads
        )
    if spec.defense:
        from app.ml.training.defended import train_defended

        return train_defended(
            name,
            epochs=epochs,
            seed=seed,
            batch_size=batch_size,
            lr=lr,
            device=device,
            models_dir=models_dir,
            data_dir=data_dir,
            progress=progress,
            threads=threads,
        )
    epochs, batch_size, lr = hyperparameters(spec, epochs, batch_size, lr)
    settings = get_settings()
    models_dir = Path(models_dir) if models_dir is not None else settings.models_dir
    pack = get_pack(spec.pack_name, data_dir)
    target = resolve_device(device)
    # Read the data first so a missing pack fails before minutes of work, not after.
    train_x, train_y = pack.load_split("train")
    test_x, _ = pack.load_split("test")

    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        fork_devices = [target.index or 0] if target.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            started = time.perf_counter()
            net = _fit(spec.build_net(), pack, target, epochs, batch_size, lr, generator, progress)
            wall_time = time.perf_counter() - started
        model = ArenaModel(
            net,
            mean=pack.mean,
            std=pack.std,
            image_shape=pack.image_shape,
            num_classes=pack.num_classes,
            device=target,
            name=name,
            pack_name=pack.name,
        )
        measure_started = time.perf_counter()
        accuracy, accuracy_n = clean_accuracy(model, pack)
        logger.info("%s clean test accuracy %.4f on %d images", name, accuracy, accuracy_n)
        robustness = evaluate_robustness(
            model, pack, n=1000, eps_list=ROBUSTNESS_EPS, attacks=ROBUSTNESS_ATTACKS, seed=seed, progress=progress
        )
        staircase = find_min_effective_eps(model, pack, n=1000, seed=seed, progress=progress)
        measure_time = time.perf_counter() - measure_started
    finally:
        torch.set_num_threads(old_threads)

    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    card: dict[str, Any] = {
        "schema_version": cards.CARD_SCHEMA_VERSION,
        "name": name,
        "pack": pack.name,
        "description": spec.description,
        "differentiable": spec.differentiable,
        "created": datetime.now(UTC).date().isoformat(),
        "data": data_section(pack, len(train_y), len(test_x)),
        "architecture": {
            "net": type(net).__name__,
            "layers": spec.architecture,
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "preprocessing": {"bounds": list(model.bounds), "mean": list(pack.mean), "std": list(pack.std)},
        "training": {
            "command": f"{spec.train_command} --seed {seed}",
            "seed": seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "optimizer": f"AdamW (weight decay {WEIGHT_DECAY})",
            "schedule": f"one-cycle learning rate, peak {lr}",
            "augmentation": AUGMENTATION,
            "wall_time_s": round(wall_time, 1),
            "measure_time_s": round(measure_time, 1),
            "device": str(target),
            "threads": torch.get_num_threads() if threads is None else threads,
            "machine": _machine(),
            "torch_version": torch.__version__,
        },
        "clean_accuracy": accuracy,
        "clean_accuracy_n": accuracy_n,
        "robustness": robustness,
        "staircase": staircase,
        "checkpoint": {"file": cards.checkpoint_path(models_dir, name).name, "sha256": ""},
    }
    _save(state, card, models_dir, name)
    return card


def _fit(
    net: nn.Module,
    pack: DataPack,
    device: torch.device,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    progress: bool,
) -> nn.Module:
    images, labels = pack.tensors("train")
    mean = torch.tensor(pack.mean).view(1, -1, 1, 1)
    std = torch.tensor(pack.std).view(1, -1, 1, 1)
    # channels_last makes oneDNN's CPU convolutions about 1.5x faster here; weights are made contiguous again
    # before saving.
    net.to(device).to(memory_format=torch.channels_last).train()
    steps_per_epoch = (len(labels) + batch_size - 1) // batch_size
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    with progress_bar(progress) as bar:
        task = bar.add_task("training", total=epochs * steps_per_epoch)
        for epoch in range(epochs):
            order = torch.randperm(len(labels), generator=generator)
            total_loss = torch.zeros(())
            for start in range(0, len(labels), batch_size):
                idx = order[start : start + batch_size]
                x = ((augment(images[idx], generator) - mean) / std).to(device)
                x = x.contiguous(memory_format=torch.channels_last)
                loss = F.cross_entropy(net(x), labels[idx].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total_loss += loss.detach().cpu() * len(idx)
                bar.advance(task)
            bar.update(task, description=f"training (epoch {epoch + 1}/{epochs})")
            logger.info("epoch %d/%d: mean loss %.4f", epoch + 1, epochs, total_loss.item() / len(labels))
    return net.eval()


def _save(state: dict[str, Tensor], card: dict[str, Any], models_dir: Path, name: str) -> None:
    """Checkpoint first, then the card carrying its hash: a cut between the two is caught by the hash check."""
    ckpt = cards.checkpoint_path(models_dir, name)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt.with_name(f".{ckpt.name}.tmp-{os.getpid()}")
    try:
        save_file(state, str(tmp), metadata={"opponent": name, "pack": card["pack"]})
        os.chmod(tmp, 0o644)  # safetensors creates the file private; a checkpoint is meant to be shared
        card["checkpoint"]["sha256"] = cards.sha256_file(tmp)
        os.replace(tmp, ckpt)
    finally:
        tmp.unlink(missing_ok=True)
    cards.write_card(card, models_dir, name)
    logger.info("wrote %s and its card", ckpt)
