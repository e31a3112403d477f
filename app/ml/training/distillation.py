"""Defensive distillation (Papernot et al. 2016): a teacher trained with its logits divided by the temperature T,
then a student trained at the same T on the teacher's soft labels; the student is deployed at temperature 1, so
its softmax saturates and the cross-entropy gradient vanishes for plain gradient attacks."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from app.ml.measure.evaluation import clean_accuracy, progress_bar
from app.ml.opponents.registry import pack_model
from app.ml.opponents.specs import OpponentSpec
from app.ml.training import fitting
from app.ml.training.checkpoints import base_card, one_cycle_training_section, save_net
from app.ml.training.options import NetRun, TrainingOptions, net_run

logger = logging.getLogger(__name__)


def train_distilled(spec: OpponentSpec, options: TrainingOptions) -> dict[str, Any]:
    with net_run(spec, options) as run:
        temperature = float(spec.defense_params["temperature"])
        started = time.perf_counter()
        teacher = _fit_at_temperature(run, spec.build_net(), None, "teacher", temperature, started)
        teacher_acc, _ = clean_accuracy(pack_model(teacher, run.pack, run.device, "teacher"), run.pack)
        student = _fit_at_temperature(run, spec.build_net(), teacher, "student", temperature, started)
        wall = time.perf_counter() - started
        # Deployed at temperature 1: the student's logits are used as they are (that is the defense).
        card = base_card(spec, run.pack, student, run.models_dir)
        card["clean_accuracy"], card["clean_accuracy_n"] = clean_accuracy(
            pack_model(student, run.pack, run.device, spec.name), run.pack
        )
        training = one_cycle_training_section(spec, run.seed, run.epochs, run.batch_size, run.lr)
        training["distillation"] = {
            "temperature": temperature,
            "recipe": f"teacher trained on hard labels with softmax(logits/{temperature:g}); student (same net) "
            f"trained on the teacher's softmax(logits/{temperature:g}) with softmax(logits/{temperature:g}); student "
            "deployed at temperature 1",
            "teacher_clean_accuracy": teacher_acc,
            "epochs_each": run.epochs,
        }
        training["completed_epochs"] = run.epochs
        training["wall_time_s"] = round(wall, 1)
        card["training"] = training
        save_net(student, card, run.models_dir, spec.name)
        return card


def _fit_at_temperature(
    run: NetRun, net: nn.Module, teacher: nn.Module | None, what: str, temperature: float, started: float
) -> nn.Module:
    """Train on hard labels (no teacher) or on the teacher's soft labels, both at ``temperature``."""
    device, generator = run.device, run.generator
    images, labels = run.pack.tensors("train")
    mean = torch.tensor(run.pack.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(run.pack.std, device=device).view(1, -1, 1, 1)
    steps_per_epoch = fitting.batches_per_epoch(len(labels), run.batch_size)
    net.to(device).train()
    optimizer, schedule = fitting.one_cycle_adamw(net, run.lr, run.epochs, steps_per_epoch)
    with progress_bar(run.progress) as bar:
        task = bar.add_task(f"distillation: {what}", total=run.epochs * steps_per_epoch)
        for epoch in range(run.epochs):
            for batch_no, idx in fitting.shuffled_batches(len(labels), run.batch_size, generator):
                x = (fitting.augment(images[idx], generator).to(device) - mean) / std
                scaled = F.log_softmax(net(x) / temperature, dim=1)
                if teacher is None:
                    loss = F.nll_loss(scaled, labels[idx].to(device))
                else:
                    with torch.no_grad():
                        soft = F.softmax(teacher(x) / temperature, dim=1)
                    loss = -(soft * scaled).sum(1).mean()
                fitting.descend(loss, optimizer, schedule)
                bar.advance(task)
                if batch_no % fitting.LOG_EVERY == 0:
                    logger.info(
                        "%s epoch %d/%d batch %d loss %.4f (%.0f s)",
                        what,
                        epoch + 1,
                        run.epochs,
                        batch_no,
                        loss.item(),
                        time.perf_counter() - started,
                    )
    return net.eval()
