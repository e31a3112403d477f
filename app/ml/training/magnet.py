"""MagNet (Meng & Chen 2017): train the autoencoder, choose the detector threshold on held-out clean training
images for the spec's target false positive rate, measure the defended model, and write the autoencoder's
checkpoint and the card (pinning both checkpoints)."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.ml.defenses.magnet import MagNet, calibrate_magnet_threshold
from app.ml.measure.evaluation import clean_predictions
from app.ml.nets.magnet_ae import MagNetAutoencoder, architecture
from app.ml.opponents.registry import load_opponent, resolve_device
from app.ml.opponents.specs import OpponentSpec
from app.ml.packs import get_pack
from app.ml.training.checkpoints import base_card, net_state, one_cycle_training_section, save_checkpoint
from app.ml.training.fitting import LOG_EVERY, batches_per_epoch, descend, shuffled_batches, training_progress
from app.ml.training.options import TrainingOptions, hyperparameters, seeded, torch_threads

logger = logging.getLogger(__name__)

# The autoencoder trains on the first 50,000 training images; the detector threshold is chosen on the last
# 10,000, which it never saw (the test set is only used to measure the threshold).
MAGNET_TRAIN_IMAGES = 50_000


def train_magnet(spec: OpponentSpec, options: TrainingOptions) -> dict[str, Any]:
    """Train MagNet's autoencoder (MSE to the clean image from a noisy copy: Meng & Chen's noise regularisation)
    and write its checkpoint and the defended opponent's card."""
    name = spec.name
    epochs, batch_size, lr = hyperparameters(spec, options)
    params = spec.defense_params
    channels, noise_std = int(params["channels"]), float(params["noise_std"])
    norm, target_fpr = int(params["norm"]), float(params["target_fpr"])
    models_dir = options.output_dir()
    pack = get_pack(spec.pack_name, options.data_dir)
    target = resolve_device(options.device)
    # Loaded before seeding: building the wrapped net draws its (discarded) initial weights from the global RNG.
    base = load_opponent(spec.wraps, device=target, models_dir=models_dir)
    with torch_threads(options.threads), seeded(options.seed, target) as generator:
        images, _ = pack.tensors("train")
        train_x, held_out = images[:MAGNET_TRAIN_IMAGES], images[MAGNET_TRAIN_IMAGES:]
        started = time.perf_counter()
        autoencoder, epoch_log = fit_autoencoder(
            MagNetAutoencoder(channels=channels),
            train_x,
            held_out,
            target,
            epochs,
            batch_size,
            lr,
            noise_std,
            generator,
            options.progress,
            started,
        )
        train_seconds = time.perf_counter() - started
        probe = MagNet(base, autoencoder, norm=norm, name=name)
        threshold = calibrate_magnet_threshold(probe, held_out.to(target), target_fpr)
        model = MagNet(base, autoencoder, threshold=threshold, norm=norm, name=name)
        test_x, test_y = pack.tensors("test")
        predictions = clean_predictions(model, test_x)
        flagged = torch.cat([model.detect(test_x[i : i + 1000].to(target)).cpu() for i in range(0, len(test_x), 1000)])
        wall = time.perf_counter() - started
        training = one_cycle_training_section(spec, options.seed, epochs, batch_size, lr)  # records its threads
    correct = predictions == test_y
    card = base_card(spec, pack, autoencoder, models_dir, train_size=MAGNET_TRAIN_IMAGES)
    card["architecture"]["net"] = (
        f"{base.card['architecture']['net']} (the {spec.wraps} checkpoint) + MagNetAutoencoder"
    )
    card["architecture"]["parameters"] = sum(p.numel() for p in autoencoder.parameters())
    card["architecture"]["parameters_counted"] = "the autoencoder's (the wrapped net's are in its own card)"
    card["wraps"] = spec.wraps
    card["wrapped_checkpoint"] = dict(base.card["checkpoint"])
    card["clean_accuracy"], card["clean_accuracy_n"] = correct.float().mean().item(), len(test_y)
    card["clean_accuracy_wrapped_net"] = base.card.get("clean_accuracy")
    card["clean_accepted_and_correct"] = (correct & ~flagged).float().mean().item()
    card["autoencoder"] = {
        "structure": architecture(channels),
        "channels": channels,
        "parameters": card["architecture"]["parameters"],
        "trained_on": f"training images 0..{MAGNET_TRAIN_IMAGES - 1} (n = {MAGNET_TRAIN_IMAGES})",
        "loss": f"mean squared error between ae(clip(x + N(0, {noise_std}^2), 0, 1)) and x (noise regularisation, "
        "Meng & Chen 2017)",
        "noise_std": noise_std,
        "epoch_log": epoch_log,
    }
    card["detector"] = {
        "kind": "MagNet reconstruction-error detector (Meng & Chen 2017)",
        "norm": norm,
        "score": f"mean over pixels of |x - ae(x)|{'' if norm == 1 else f'^{norm}'} (the reconstruction error), "
        "rejected above the threshold",
        "classifies": "f(ae(x)) (the reformer)",
        "threshold": threshold,
        "target_fpr": target_fpr,
        "calibrated_on": f"clean training images {MAGNET_TRAIN_IMAGES}..{len(images) - 1} "
        f"(n = {len(images) - MAGNET_TRAIN_IMAGES}, not used to train the autoencoder)",
        "test_fpr": flagged[:1000].float().mean().item(),
        "test_fpr_n": 1000,
        "test_fpr_subset": "first 1000 clean test images",
        "test_fpr_all": flagged.float().mean().item(),
        "test_fpr_all_n": len(flagged),
    }
    training.update(
        optimizer="Adam",
        schedule=f"cosine decay of the learning rate from {lr} to 0",
        augmentation=f"none besides the input noise (std {noise_std}, clipped to [0, 1])",
        device=str(target),
        completed_epochs=epochs,
        train_wall_time_s=round(train_seconds, 1),
        wall_time_s=round(wall, 1),
        wall_time_includes="autoencoder training, threshold calibration and the test-set measurements",
    )
    card["training"] = training
    save_checkpoint(net_state(autoencoder), card, models_dir, name)
    return card


def fit_autoencoder(
    autoencoder: nn.Module,
    train_x: Tensor,
    held_out: Tensor,
    device: torch.device,
    epochs: int,
    batch_size: int,
    lr: float,
    noise_std: float,
    generator: torch.Generator,
    progress: bool,
    started: float,
) -> tuple[nn.Module, list[dict[str, Any]]]:
    autoencoder.to(device).train()
    steps_per_epoch = batches_per_epoch(len(train_x), batch_size)
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    probe = held_out[:2000].to(device)
    log: list[dict[str, Any]] = []
    description = "MagNet autoencoder"
    with training_progress(
        progress, description, logger, epochs, steps_per_epoch, every=LOG_EVERY * 4, started=started
    ) as meter:
        for epoch in range(epochs):
            total, seen = 0.0, 0
            for batch_no, idx in shuffled_batches(len(train_x), batch_size, generator):
                clean = train_x[idx].to(device)
                noisy = (clean + noise_std * torch.randn(clean.shape, generator=generator).to(device)).clamp(0, 1)
                loss = F.mse_loss(autoencoder(noisy), clean)
                descend(loss, optimizer, schedule)
                total += loss.item() * len(clean)
                seen += len(clean)
                meter.advance()
                meter.log_batch(epoch, batch_no, "loss %.5f", total / seen)
            autoencoder.eval()
            with torch.no_grad():
                heldout_mse = F.mse_loss(autoencoder(probe), probe).item()
            autoencoder.train()
            entry = {
                "epoch": epoch + 1,
                "train_loss": round(total / seen, 5),
                "heldout_mse": round(heldout_mse, 5),
                "elapsed_s": round(meter.seconds(), 1),
            }
            log.append(entry)
            logger.info("epoch %d/%d done: %s", epoch + 1, epochs, entry)
    return autoencoder.eval(), log
