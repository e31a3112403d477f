"""Train the defended opponents of the defense lab (issue #8): PGD adversarial training and defensive distillation.

* ``pgd-at`` (Madry et al. 2018): every training batch is replaced by its PGD-L∞ adversarial version at the
  training eps (random start, ``steps`` signed steps of 2.5*eps/steps), ramped from 0 to eps over the first epoch.
* ``distillation`` (Papernot et al. 2016): a teacher trained with its logits divided by the temperature T, then a
  student trained at the same T on the teacher's soft labels; the student is deployed at temperature 1, so its
  softmax saturates and the cross-entropy gradient vanishes for plain gradient attacks.

A checkpoint and card are written after every epoch, so a run cut short still leaves a loadable opponent whose
card says how far it got (``training.completed_epochs``). The robustness table is measured separately by
``arena defense-eval`` (app/ml/measure/defense_eval.py), which can take longer than training.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.config import get_settings
from app.ml.measure.evaluation import clean_accuracy, progress_bar
from app.ml.model import ArenaModel
from app.ml.opponents import cards
from app.ml.opponents.registry import resolve_device
from app.ml.opponents.specs import OpponentSpec, opponent_spec
from app.ml.packs import DataPack, get_pack
from app.ml.training.plain import AUGMENTATION, WEIGHT_DECAY, _machine, _save, augment, data_section, hyperparameters

logger = logging.getLogger(__name__)

LOG_EVERY = 50  # batches between progress lines in the log (for runs in the background)


def _wrap(net: nn.Module, pack: DataPack, device: torch.device, name: str) -> ArenaModel:
    return ArenaModel(
        net,
        mean=pack.mean,
        std=pack.std,
        image_shape=pack.image_shape,
        num_classes=pack.num_classes,
        device=device,
        name=name,
        pack_name=pack.name,
    )


def _pgd_batch(net: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int, mean: Tensor, std: Tensor) -> Tensor:
    """PGD-L∞ from a uniform random start in pixel space (what training sees), with the net's weights frozen."""
    if eps <= 0:
        return x
    step = 2.5 * eps / steps
    adv = (x + eps * (2 * torch.rand_like(x) - 1)).clamp_(0, 1)
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(net((adv - mean) / std), y)
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach() + step * grad.sign()
            adv = torch.min(torch.max(adv, x - eps), x + eps).clamp_(0, 1)
    finally:
        for p in net.parameters():
            p.requires_grad_(True)
    return adv.detach()


def _robust_val(net: nn.Module, x: Tensor, y: Tensor, eps: float, mean: Tensor, std: Tensor) -> tuple[float, float]:
    """Clean and PGD-10 accuracy on held-out training images: what picks the best epoch."""
    net.eval()
    with torch.no_grad():
        clean = (net((x - mean) / std).argmax(1) == y).float().mean().item()
    adv = _pgd_batch(net, x, y, eps, 10, mean, std)
    with torch.no_grad():
        robust = (net((adv - mean) / std).argmax(1) == y).float().mean().item()
    net.train()
    return clean, robust


def train_defended(
    name: str,
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
    """Train a defended opponent (``spec.defense`` says which recipe) and write its checkpoint and card."""
    spec = opponent_spec(name)
    if spec.defense == "feature-squeezing":
        return calibrate_squeezing(name, models_dir=models_dir, data_dir=data_dir, device=device)
    if spec.defense == "jpeg":
        return calibrate_jpeg(name, models_dir=models_dir, data_dir=data_dir, device=device)
    recipe = None
    if spec.defense == "magnet":
        recipe = train_magnet
    elif spec.defense == "defense-gan":
        from app.ml.training.defense_gan import train_defense_gan

        recipe = train_defense_gan
    if recipe is not None:
        return recipe(
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
    if spec.defense not in ("pgd-at", "distillation", "ibp"):
        raise ValueError(f"opponent {name!r} is not trained by a defense recipe (defense={spec.defense!r})")
    epochs, batch_size, lr = hyperparameters(spec, epochs, batch_size, lr)
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    pack = get_pack(spec.pack_name, data_dir)
    target = resolve_device(device)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[target.index or 0] if target.type == "cuda" else []):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            if spec.defense == "ibp":
                from app.ml.training.certified import train_certified as train

                return train(spec, pack, target, epochs, batch_size, lr, seed, generator, models_dir, progress)
            if spec.defense == "pgd-at":
                return _train_pgd_at(spec, pack, target, epochs, batch_size, lr, seed, generator, models_dir, progress)
            return _train_distilled(spec, pack, target, epochs, batch_size, lr, seed, generator, models_dir, progress)
    finally:
        torch.set_num_threads(old_threads)


def _base_card(
    spec: OpponentSpec, pack: DataPack, net: nn.Module, seed: int, models_dir: Path, train_size: int = 60_000
) -> dict[str, Any]:
    return {
        "schema_version": cards.CARD_SCHEMA_VERSION,
        "name": spec.name,
        "pack": pack.name,
        "description": spec.description,
        "differentiable": spec.differentiable,
        "created": datetime.now(UTC).date().isoformat(),
        "data": data_section(pack, train_size, 10_000),
        "architecture": {
            "net": type(net).__name__,
            "layers": spec.architecture,
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "preprocessing": {"bounds": [0.0, 1.0], "mean": list(pack.mean), "std": list(pack.std)},
        "checkpoint": {"file": cards.checkpoint_path(models_dir, spec.name).name, "sha256": ""},
    }


def _training_block(spec: OpponentSpec, seed: int, epochs: int, batch_size: int, lr: float) -> dict[str, Any]:
    return {
        "command": f"{spec.train_command} --seed {seed}" + (f" --epochs {epochs}" if epochs != spec.epochs else ""),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": f"AdamW (weight decay {WEIGHT_DECAY})",
        "schedule": f"one-cycle learning rate, peak {lr}",
        "augmentation": AUGMENTATION,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "machine": _machine(),
        "torch_version": torch.__version__,
    }


def _write(net: nn.Module, card: dict[str, Any], models_dir: Path, name: str) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    _save(state, card, models_dir, name)


def _train_pgd_at(
    spec: OpponentSpec,
    pack: DataPack,
    device: torch.device,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    generator: torch.Generator,
    models_dir: Path,
    progress: bool,
) -> dict[str, Any]:
    eps, steps = float(spec.defense_params["eps"]), int(spec.defense_params["steps"])
    images, labels = pack.tensors("train")
    # The last 1,000 training images are held out to pick the best epoch by PGD-10 accuracy (never the test set).
    val_x, val_y = images[-1000:].to(device), labels[-1000:].to(device)
    images, labels = images[:-1000], labels[:-1000]
    mean = torch.tensor(pack.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(pack.std, device=device).view(1, -1, 1, 1)
    net = spec.build_net().to(device).train()
    steps_per_epoch = (len(labels) + batch_size - 1) // batch_size
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    card = _base_card(spec, pack, net, seed, models_dir, train_size=len(labels))
    training = _training_block(spec, seed, epochs, batch_size, lr)
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
    started = time.perf_counter()
    with progress_bar(progress) as bar:
        task = bar.add_task("adversarial training", total=epochs * steps_per_epoch)
        for epoch in range(epochs):
            order = torch.randperm(len(labels), generator=generator)
            total_loss, seen = 0.0, 0
            for batch_no, start in enumerate(range(0, len(labels), batch_size)):
                idx = order[start : start + batch_size]
                x = augment(images[idx], generator).to(device)
                y = labels[idx].to(device)
                done = epoch + batch_no / steps_per_epoch
                batch_eps = eps * min(1.0, done)
                adv = _pgd_batch(net, x, y, batch_eps, steps, mean, std)
                loss = F.cross_entropy(net((adv - mean) / std), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total_loss += loss.item() * len(idx)
                seen += len(idx)
                bar.advance(task)
                if batch_no % LOG_EVERY == 0:
                    logger.info(
                        "epoch %d/%d batch %d/%d eps %.3f loss %.4f (%.0f s)",
                        epoch + 1,
                        epochs,
                        batch_no,
                        steps_per_epoch,
                        batch_eps,
                        total_loss / seen,
                        time.perf_counter() - started,
                    )
            val_clean, val_robust = _robust_val(net, val_x, val_y, eps, mean, std)
            entry = {
                "epoch": epoch + 1,
                "train_adv_loss": round(total_loss / seen, 4),
                "heldout_clean": val_clean,
                "heldout_pgd10": val_robust,
                "elapsed_s": round(time.perf_counter() - started, 1),
            }
            training["epoch_log"].append(entry)
            logger.info("epoch %d/%d done: %s", epoch + 1, epochs, entry)
            if val_robust > best:
                best = val_robust
                training["selected_epoch"] = epoch + 1
                training["completed_epochs"] = epoch + 1
                training["wall_time_s"] = round(time.perf_counter() - started, 1)
                model = _wrap(net.eval(), pack, device, spec.name)
                card["clean_accuracy"], card["clean_accuracy_n"] = clean_accuracy(model, pack)
                net.train()
                card["training"] = training
                _write(net, card, models_dir, spec.name)
                logger.info("saved epoch %d (held-out PGD-10 %.4f)", epoch + 1, val_robust)
            else:
                training["completed_epochs"] = epoch + 1
                # Keep the card's training log current without replacing the better checkpoint.
                card["training"] = training
                cards.write_card(card, models_dir, spec.name)
    return card


def _train_distilled(
    spec: OpponentSpec,
    pack: DataPack,
    device: torch.device,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    generator: torch.Generator,
    models_dir: Path,
    progress: bool,
) -> dict[str, Any]:
    temperature = float(spec.defense_params["temperature"])
    images, labels = pack.tensors("train")
    mean = torch.tensor(pack.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(pack.std, device=device).view(1, -1, 1, 1)
    steps_per_epoch = (len(labels) + batch_size - 1) // batch_size
    started = time.perf_counter()

    def fit(net: nn.Module, teacher: nn.Module | None, what: str) -> nn.Module:
        net.to(device).train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch
        )
        with progress_bar(progress) as bar:
            task = bar.add_task(f"distillation: {what}", total=epochs * steps_per_epoch)
            for epoch in range(epochs):
                order = torch.randperm(len(labels), generator=generator)
                for batch_no, start in enumerate(range(0, len(labels), batch_size)):
                    idx = order[start : start + batch_size]
                    x = (augment(images[idx], generator).to(device) - mean) / std
                    scaled = F.log_softmax(net(x) / temperature, dim=1)
                    if teacher is None:
                        loss = F.nll_loss(scaled, labels[idx].to(device))
                    else:
                        with torch.no_grad():
                            soft = F.softmax(teacher(x) / temperature, dim=1)
                        loss = -(soft * scaled).sum(1).mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    bar.advance(task)
                    if batch_no % LOG_EVERY == 0:
                        logger.info(
                            "%s epoch %d/%d batch %d loss %.4f (%.0f s)",
                            what,
                            epoch + 1,
                            epochs,
                            batch_no,
                            loss.item(),
                            time.perf_counter() - started,
                        )
        return net.eval()

    teacher = fit(spec.build_net(), None, "teacher")
    teacher_acc, _ = clean_accuracy(_wrap(teacher, pack, device, "teacher"), pack)
    student = fit(spec.build_net(), teacher, "student")
    wall = time.perf_counter() - started
    # Deployed at temperature 1: the student's logits are used as they are (that is the defense).
    card = _base_card(spec, pack, student, seed, models_dir)
    card["clean_accuracy"], card["clean_accuracy_n"] = clean_accuracy(_wrap(student, pack, device, spec.name), pack)
    training = _training_block(spec, seed, epochs, batch_size, lr)
    training["distillation"] = {
        "temperature": temperature,
        "recipe": f"teacher trained on hard labels with softmax(logits/{temperature:g}); student (same net) trained "
        f"on the teacher's softmax(logits/{temperature:g}) with softmax(logits/{temperature:g}); student deployed "
        "at temperature 1",
        "teacher_clean_accuracy": teacher_acc,
        "epochs_each": epochs,
    }
    training["completed_epochs"] = epochs
    training["wall_time_s"] = round(wall, 1)
    card["training"] = training
    _write(student, card, models_dir, spec.name)
    return card


# Clean training images the detector threshold is chosen on (the test set is only used to measure it).
CALIBRATION_SLICE = (50_000, 52_000)


def calibrate_squeezing(
    name: str,
    *,
    models_dir: Path | None = None,
    data_dir: Path | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Choose the feature-squeezing detector's threshold on clean training images for the spec's target FPR,
    measure clean accuracy and the false positive rate on the test set, and write the wrapper's card."""
    from app.ml.defenses.squeezing import FeatureSqueezing, calibrate_threshold
    from app.ml.measure.evaluation import clean_predictions
    from app.ml.opponents.registry import load_opponent

    spec = opponent_spec(name)
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    pack = get_pack(spec.pack_name, data_dir)
    base = load_opponent(spec.wraps, device=resolve_device(device), models_dir=models_dir)
    bits, target_fpr = int(spec.defense_params["bits"]), float(spec.defense_params["target_fpr"])
    started = time.perf_counter()
    train_x, _ = pack.tensors("train")
    lo, hi = CALIBRATION_SLICE
    probe = FeatureSqueezing(base, bits=bits, name=name)
    threshold = calibrate_threshold(probe, train_x[lo:hi].to(base.device), target_fpr)
    model = FeatureSqueezing(base, bits=bits, threshold=threshold, name=name)
    test_x, test_y = pack.tensors("test")
    accuracy = (clean_predictions(model, test_x) == test_y).float().mean().item()
    flagged = torch.cat([model.detect(test_x[i : i + 500].to(base.device)).cpu() for i in range(0, 1000, 500)])
    wall = time.perf_counter() - started
    card = _base_card(spec, pack, base.net, 0, models_dir)
    card["checkpoint"] = dict(base.card["checkpoint"])
    card["architecture"]["net"] = f"{base.card['architecture']['net']} (the {spec.wraps} checkpoint) + squeezers"
    card["wraps"] = spec.wraps
    card["clean_accuracy"], card["clean_accuracy_n"] = accuracy, len(test_y)
    card["detector"] = {
        "kind": "feature squeezing (Xu et al. 2018), joint detector",
        "bits": bits,
        "squeezers": [f"bit depth {bits}", "median filter 2x2"],
        "score": "max over squeezers of L1(softmax f(x), softmax f(squeeze(x)))",
        "classifies": f"f(bit_depth(x, {bits}))",
        "threshold": threshold,
        "target_fpr": target_fpr,
        "calibrated_on": f"clean training images {lo}..{hi - 1} (n = {hi - lo})",
        "test_fpr": flagged.float().mean().item(),
        "test_fpr_n": len(flagged),
        "test_fpr_subset": "first 1000 clean test images",
    }
    card["training"] = {
        "command": spec.train_command,
        "calibration_only": True,
        "wall_time_s": round(wall, 1),
        "device": str(base.device),
        "threads": torch.get_num_threads(),
        "machine": _machine(),
        "torch_version": torch.__version__,
    }
    cards.write_card(card, models_dir, name)
    return card


def calibrate_jpeg(
    name: str,
    *,
    models_dir: Path | None = None,
    data_dir: Path | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """No training and nothing to calibrate: measure the JPEG-wrapped opponent's clean accuracy, write its card."""
    from app.ml.defenses.jpeg import JPEGCompression
    from app.ml.measure.evaluation import clean_predictions
    from app.ml.opponents.registry import load_opponent

    spec = opponent_spec(name)
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    pack = get_pack(spec.pack_name, data_dir)
    base = load_opponent(spec.wraps, device=resolve_device(device), models_dir=models_dir)
    quality = int(spec.defense_params["quality"])
    started = time.perf_counter()
    model = JPEGCompression(base, quality=quality, name=name)
    test_x, test_y = pack.tensors("test")
    accuracy = (clean_predictions(model, test_x) == test_y).float().mean().item()
    card = _base_card(spec, pack, base.net, 0, models_dir)
    card["checkpoint"] = dict(base.card["checkpoint"])
    card["architecture"]["net"] = f"{base.card['architecture']['net']} (the {spec.wraps} checkpoint) + JPEG"
    card["wraps"] = spec.wraps
    card["transform"] = {"kind": "JPEG encode/decode (libjpeg via Pillow)", "quality": quality}
    card["clean_accuracy"], card["clean_accuracy_n"] = accuracy, len(test_y)
    card["training"] = {
        "command": spec.train_command,
        "calibration_only": True,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "device": str(base.device),
        "threads": torch.get_num_threads(),
        "machine": _machine(),
        "torch_version": torch.__version__,
    }
    cards.write_card(card, models_dir, name)
    return card


# MagNet's autoencoder trains on the first 50,000 training images; the detector threshold is chosen on the last
# 10,000, which it never saw (the test set is only used to measure the threshold).
MAGNET_TRAIN_IMAGES = 50_000


def train_magnet(
    name: str,
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
    """Train MagNet's autoencoder (MSE to the clean image from a noisy copy: Meng & Chen's noise regularisation),
    choose the detector threshold on held-out clean training images for the spec's target false positive rate,
    measure the defended model, and write the autoencoder's checkpoint and the card (pinning both checkpoints)."""
    from app.ml.defenses.magnet import MagNet, calibrate_magnet_threshold
    from app.ml.measure.evaluation import clean_predictions
    from app.ml.nets.magnet_ae import MagNetAutoencoder, architecture
    from app.ml.opponents.registry import load_opponent

    spec = opponent_spec(name)
    epochs, batch_size, lr = hyperparameters(spec, epochs, batch_size, lr)
    params = spec.defense_params
    channels, noise_std = int(params["channels"]), float(params["noise_std"])
    norm, target_fpr = int(params["norm"]), float(params["target_fpr"])
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    pack = get_pack(spec.pack_name, data_dir)
    target = resolve_device(device)
    base = load_opponent(spec.wraps, device=target, models_dir=models_dir)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[target.index or 0] if target.type == "cuda" else []):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            images, _ = pack.tensors("train")
            train_x, held_out = images[:MAGNET_TRAIN_IMAGES], images[MAGNET_TRAIN_IMAGES:]
            started = time.perf_counter()
            autoencoder, epoch_log = _fit_autoencoder(
                MagNetAutoencoder(channels=channels),
                train_x,
                held_out,
                target,
                epochs,
                batch_size,
                lr,
                noise_std,
                generator,
                progress,
                started,
            )
            train_seconds = time.perf_counter() - started
            probe = MagNet(base, autoencoder, norm=norm, name=name)
            threshold = calibrate_magnet_threshold(probe, held_out.to(target), target_fpr)
            model = MagNet(base, autoencoder, threshold=threshold, norm=norm, name=name)
            test_x, test_y = pack.tensors("test")
            predictions = clean_predictions(model, test_x)
            flagged = torch.cat(
                [model.detect(test_x[i : i + 1000].to(target)).cpu() for i in range(0, len(test_x), 1000)]
            )
            wall = time.perf_counter() - started
            training = _training_block(spec, seed, epochs, batch_size, lr)  # records the threads it ran on
    finally:
        torch.set_num_threads(old_threads)
    correct = predictions == test_y
    card = _base_card(spec, pack, autoencoder, seed, models_dir, train_size=MAGNET_TRAIN_IMAGES)
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
    state = {k: v.detach().contiguous().cpu() for k, v in autoencoder.state_dict().items()}
    _save(state, card, models_dir, name)
    return card


def _fit_autoencoder(
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
    steps_per_epoch = (len(train_x) + batch_size - 1) // batch_size
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    probe = held_out[:2000].to(device)
    log: list[dict[str, Any]] = []
    with progress_bar(progress) as bar:
        task = bar.add_task("MagNet autoencoder", total=epochs * steps_per_epoch)
        for epoch in range(epochs):
            order = torch.randperm(len(train_x), generator=generator)
            total, seen = 0.0, 0
            for batch_no, start in enumerate(range(0, len(train_x), batch_size)):
                clean = train_x[order[start : start + batch_size]].to(device)
                noisy = (clean + noise_std * torch.randn(clean.shape, generator=generator).to(device)).clamp(0, 1)
                loss = F.mse_loss(autoencoder(noisy), clean)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(clean)
                seen += len(clean)
                bar.advance(task)
                if batch_no % (LOG_EVERY * 4) == 0:
                    logger.info(
                        "epoch %d/%d batch %d/%d loss %.5f (%.0f s)",
                        epoch + 1,
                        epochs,
                        batch_no,
                        steps_per_epoch,
                        total / seen,
                        time.perf_counter() - started,
                    )
            autoencoder.eval()
            with torch.no_grad():
                heldout_mse = F.mse_loss(autoencoder(probe), probe).item()
            autoencoder.train()
            entry = {
                "epoch": epoch + 1,
                "train_loss": round(total / seen, 5),
                "heldout_mse": round(heldout_mse, 5),
                "elapsed_s": round(time.perf_counter() - started, 1),
            }
            log.append(entry)
            logger.info("epoch %d/%d done: %s", epoch + 1, epochs, entry)
    return autoencoder.eval(), log
