"""Train a plain net opponent, measure it, and write its checkpoint and model card.

Nothing is written until training and measuring have finished: an interrupted run leaves the previous
checkpoint and card exactly as they were.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from app.ml.measure.evaluation import (
    ROBUSTNESS_ATTACKS,
    ROBUSTNESS_EPS,
    clean_accuracy,
    evaluate_robustness,
    find_min_effective_eps,
    progress_bar,
)
from app.ml.opponents import cards
from app.ml.opponents.registry import pack_model, resolve_device
from app.ml.opponents.specs import OpponentSpec
from app.ml.packs import DataPack, get_pack
from app.ml.training import fitting
from app.ml.training.checkpoints import card_header, net_state, provenance, save_checkpoint
from app.ml.training.options import TrainingOptions, hyperparameters, seeded, torch_threads

logger = logging.getLogger(__name__)


def train_plain(spec: OpponentSpec, options: TrainingOptions) -> dict[str, Any]:
    """Train ``spec``'s net from scratch, measure it, save ``<models_dir>/<name>.safetensors`` and its card."""
    name = spec.name
    epochs, batch_size, lr = hyperparameters(spec, options)
    models_dir = options.output_dir()
    pack = get_pack(spec.pack_name, options.data_dir)
    target = resolve_device(options.device)
    # Read the data first so a missing pack fails before minutes of work, not after.
    train_x, train_y = pack.load_split("train")
    test_x, _ = pack.load_split("test")

    with torch_threads(options.threads):
        with seeded(options.seed, target) as generator:
            started = time.perf_counter()
            net = fit(spec.build_net(), pack, target, epochs, batch_size, lr, generator, options.progress)
            wall_time = time.perf_counter() - started
        model = pack_model(net, pack, target, name)
        measure_started = time.perf_counter()
        accuracy, accuracy_n = clean_accuracy(model, pack)
        logger.info("%s clean test accuracy %.4f on %d images", name, accuracy, accuracy_n)
        robustness = evaluate_robustness(
            model,
            pack,
            n=1000,
            eps_list=ROBUSTNESS_EPS,
            attacks=ROBUSTNESS_ATTACKS,
            seed=options.seed,
            progress=options.progress,
        )
        staircase = find_min_effective_eps(model, pack, n=1000, seed=options.seed, progress=options.progress)
        measure_time = time.perf_counter() - measure_started
        where = provenance()

    card: dict[str, Any] = {
        **card_header(spec, pack, net, len(train_y), len(test_x)),
        "training": {
            "command": f"{spec.train_command} --seed {options.seed}",
            "seed": options.seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            **fitting.one_cycle_recipe(lr),
            "wall_time_s": round(wall_time, 1),
            "measure_time_s": round(measure_time, 1),
            "device": str(target),
            **where,
        },
        "clean_accuracy": accuracy,
        "clean_accuracy_n": accuracy_n,
        "robustness": robustness,
        "staircase": staircase,
        "checkpoint": {"file": cards.checkpoint_path(models_dir, name).name, "sha256": ""},
    }
    save_checkpoint(net_state(net), card, models_dir, name)
    return card


def fit(
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
    steps_per_epoch = fitting.batches_per_epoch(len(labels), batch_size)
    optimizer, schedule = fitting.one_cycle_adamw(net, lr, epochs, steps_per_epoch)
    with progress_bar(progress) as bar:
        task = bar.add_task("training", total=epochs * steps_per_epoch)
        for epoch in range(epochs):
            total_loss = torch.zeros(())
            for _, idx in fitting.shuffled_batches(len(labels), batch_size, generator):
                x = ((fitting.augment(images[idx], generator) - mean) / std).to(device)
                x = x.contiguous(memory_format=torch.channels_last)
                loss = F.cross_entropy(net(x), labels[idx].to(device))
                fitting.descend(loss, optimizer, schedule)
                total_loss += loss.detach().cpu() * len(idx)
                bar.advance(task)
            bar.update(task, description=f"training (epoch {epoch + 1}/{epochs})")
            logger.info("epoch %d/%d: mean loss %.4f", epoch + 1, epochs, total_loss.item() / len(labels))
    return net.eval()
