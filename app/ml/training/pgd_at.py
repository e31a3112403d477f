"""PGD adversarial training (Madry et al. 2018): every training batch is replaced by its PGD-L∞ adversarial
version at the training eps (random start, ``steps`` signed steps of 2.5*eps/steps), ramped from 0 to eps over
the first epoch.

The adversarial images come from the attack library's PGD (app/ml/attacks/pgd.py), seeded by the run's
generator, against a frozen copy of the net as it is at that step: the net being trained is never switched to
eval mode nor has its ``requires_grad`` flags touched. A checkpoint and card are written whenever the held-out
PGD-10 accuracy improves, so a run cut short still leaves a loadable opponent whose card says how far it got
(``training.completed_epochs``). The robustness table is measured separately by ``arena defense-eval``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.ml.attacks.pgd import PGD
from app.ml.measure.evaluation import clean_accuracy, per_image_generators
from app.ml.opponents import cards
from app.ml.opponents.registry import pack_model
from app.ml.opponents.specs import OpponentSpec
from app.ml.packs import DataPack
from app.ml.training import fitting
from app.ml.training.checkpoints import base_card, one_cycle_training_section, save_net
from app.ml.training.options import TrainingOptions, net_run

logger = logging.getLogger(__name__)

HELD_OUT = 1000
HELD_OUT_STEPS = 10


def adversarial_batch(
    net: nn.Module,
    pack: DataPack,
    device: torch.device,
    images: Tensor,
    labels: Tensor,
    eps: float,
    steps: int,
    generator: torch.Generator | list[torch.Generator],
) -> Tensor:
    """PGD-L∞ images of ``images`` (pixel space) at ``eps`` against ``net`` as it is now; ``images`` at eps 0."""
    if eps <= 0:
        return images
    frozen = pack_model(net, pack, device, "training")
    return PGD(steps=steps)(frozen, images, labels, eps, generator=generator).adversarial


def held_out_accuracy(
    net: nn.Module, pack: DataPack, device: torch.device, x: Tensor, y: Tensor, eps: float, seed: int
) -> tuple[float, float]:
    """Clean and PGD-10 accuracy on held-out training images (random starts seeded per image): what picks the
    best epoch."""
    model = pack_model(net, pack, device, "held-out")
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    adv = adversarial_batch(net, pack, device, x, y, eps, HELD_OUT_STEPS, per_image_generators(range(len(y)), seed))
    with torch.no_grad():
        robust = (model(adv).argmax(1) == y).float().mean().item()
    return clean, robust


def train_pgd_at(spec: OpponentSpec, options: TrainingOptions) -> dict[str, Any]:
    with net_run(spec, options) as run:
        eps, steps = float(spec.defense_params["eps"]), int(spec.defense_params["steps"])
        pack, device, generator = run.pack, run.device, run.generator
        images, labels = pack.tensors("train")
        # The last 1,000 training images are held out to pick the best epoch by PGD-10 accuracy (never the test set).
        val_x, val_y = images[-HELD_OUT:].to(device), labels[-HELD_OUT:].to(device)
        images, labels = images[:-HELD_OUT], labels[:-HELD_OUT]
        mean = torch.tensor(pack.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(pack.std, device=device).view(1, -1, 1, 1)
        net = spec.build_net().to(device).train()
        steps_per_epoch = fitting.batches_per_epoch(len(labels), run.batch_size)
        optimizer, schedule = fitting.one_cycle_adamw(net, run.lr, run.epochs, steps_per_epoch)
        card = base_card(spec, pack, net, run.models_dir, train_size=len(labels))
        training = one_cycle_training_section(spec, run.seed, run.epochs, run.batch_size, run.lr)
        training["adversarial_training"] = {
            "attack": f"PGD-L∞, {steps} steps of 2.5*eps/{steps}, uniform random start",
            "eps": eps,
            "steps": steps,
            "eps_schedule": "linear ramp from 0 to eps over the first epoch, then eps",
            "model_selection": "checkpoint of the epoch with the best PGD-10 accuracy on the last 1,000 training "
            "images (held out from training)",
        }
        training["epoch_log"] = []
        best = -1.0
        description = "adversarial training"
        with fitting.training_progress(run.progress, description, logger, run.epochs, steps_per_epoch) as progress:
            for epoch in range(run.epochs):
                total_loss, seen = 0.0, 0
                for batch_no, idx in fitting.shuffled_batches(len(labels), run.batch_size, generator):
                    x = fitting.augment(images[idx], generator).to(device)
                    y = labels[idx].to(device)
                    batch_eps = eps * min(1.0, epoch + batch_no / steps_per_epoch)
                    adv = adversarial_batch(net, pack, device, x, y, batch_eps, steps, generator)
                    loss = F.cross_entropy(net((adv - mean) / std), y)
                    fitting.descend(loss, optimizer, schedule)
                    total_loss += loss.item() * len(idx)
                    seen += len(idx)
                    progress.advance()
                    progress.log_batch(epoch, batch_no, "eps %.3f loss %.4f", batch_eps, total_loss / seen)
                val_clean, val_robust = held_out_accuracy(net, pack, device, val_x, val_y, eps, run.seed)
                entry = {
                    "epoch": epoch + 1,
                    "train_adv_loss": round(total_loss / seen, 4),
                    "heldout_clean": val_clean,
                    "heldout_pgd10": val_robust,
                    "elapsed_s": round(progress.seconds(), 1),
                }
                training["epoch_log"].append(entry)
                logger.info("epoch %d/%d done: %s", epoch + 1, run.epochs, entry)
                if val_robust > best:
                    best = val_robust
                    training["selected_epoch"] = epoch + 1
                    training["completed_epochs"] = epoch + 1
                    training["wall_time_s"] = round(progress.seconds(), 1)
                    card["clean_accuracy"], card["clean_accuracy_n"] = clean_accuracy(
                        pack_model(net, pack, device, spec.name), pack
                    )
                    card["training"] = training
                    save_net(net, card, run.models_dir, spec.name)
                    logger.info("saved epoch %d (held-out PGD-10 %.4f)", epoch + 1, val_robust)
                else:
                    training["completed_epochs"] = epoch + 1
                    # Keep the card's training log current without replacing the better checkpoint.
                    card["training"] = training
                    cards.write_card(card, run.models_dir, spec.name)
        return card
