"""Train an AdvGAN generator against an opponent, measure it against PGD-10, and write its checkpoint and card.

Loss (Xiao et al. 2018, eq. 1-4), per batch with a random eps per image drawn from ``eps_range``:

- adversarial loss on the target (the opponent, frozen, in eval mode): the C&W margin
  ``max(Z_y - max_{j != y} Z_j, -kappa)``, untargeted;
- GAN loss: a small discriminator tells clean images from perturbed ones (least-squares GAN, as in the paper);
  the generator is pushed to make perturbed images it cannot tell apart;
- hinge on the perturbation size: ``max(0, ||delta||_2 / (eps * sqrt(d)) - c)``. The paper bounds ``||delta||_2``
  by a constant; here the generator's output is already scaled by each sample's L∞ eps, so the bound is relative
  to the largest L2 norm that budget allows (``eps * sqrt(d)``), which makes one ``c`` fit every eps.

Simplification, said plainly: the perturbation is ``eps * tanh(G(x))`` and is clipped to the pixel bounds,
instead of an unconstrained ``G(x)`` later clipped to the budget; that is what lets one generator serve every eps.

Everything random is seeded from ``seed`` under ``torch.random.fork_rng``; nothing is written until training and
measuring have finished, so an interrupted run leaves the previous checkpoint and card as they were.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from app.ml.attacks.advgan import AdvGAN
from app.ml.measure.advgan_vs_pgd import evaluate_against_pgd, measure_speed
from app.ml.measure.evaluation import progress_bar
from app.ml.model import ArenaModel
from app.ml.nets.advgan import DISCRIMINATOR_ARCHITECTURE, AdvGANDiscriminator, AdvGANGenerator, generator_architecture
from app.ml.opponents import cards
from app.ml.opponents.registry import load_opponent, resolve_device
from app.ml.packs import get_pack
from app.ml.training.advgan_card import save_generator
from app.ml.training.checkpoints import net_state, provenance
from app.ml.training.fitting import batches_per_epoch, descend, shuffled_batches
from app.ml.training.options import TrainingOptions, seeded, torch_threads

logger = logging.getLogger(__name__)

EPS_RANGE = (0.02, 0.25)
KAPPA = 5.0
GAN_WEIGHT = 0.1
HINGE_WEIGHT = 1.0
HINGE_C = 0.8
WIDTH = 16
DEFAULT_EPOCHS = 1
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 1e-3
DEFAULT_THREADS = 2  # for a call without options; `arena train-advgan` passes its --threads (default 1)


def generator_name(opponent: str) -> str:
    return f"advgan-{opponent}"


class _InMemoryAdvGAN(AdvGAN):
    """The AdvGAN attack with a generator that is not on disk yet, so the card measures the real attack path."""

    def __init__(self, net: AdvGANGenerator, card: dict[str, Any]) -> None:
        super().__init__()
        self._net, self._card = net, card

    def generator_net(self, model: ArenaModel) -> tuple[AdvGANGenerator, dict[str, Any]]:
        return self._net, self._card


def adversarial_loss(logits: Tensor, labels: Tensor, kappa: float = KAPPA) -> Tensor:
    """C&W margin: true-class logit minus the best other logit, floored at ``-kappa`` (mean over the batch)."""
    own = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
    others = logits.scatter(1, labels.unsqueeze(1), float("-inf")).amax(1)
    return torch.clamp(own - others, min=-kappa).mean()


def hinge_loss(direction: Tensor, c: float = HINGE_C) -> Tensor:
    """``max(0, RMS(direction) - c)``: the perturbation's L2 norm relative to the largest its L∞ eps allows."""
    rms = direction.flatten(1).pow(2).mean(1).sqrt()
    return F.relu(rms - c).mean()


def train_advgan(
    opponent: str = "fashion-cnn",
    options: TrainingOptions | None = None,
    *,
    eval_n: int = 1000,
    speed_reps: int = 10,
    speed_batch: int = 128,
    max_batches: int | None = None,
    width: int = WIDTH,
) -> dict[str, Any]:
    """Train ``advgan-<opponent>``, measure it, save ``<models_dir>/advgan-<opponent>.safetensors`` and its card.

    ``None`` for the options' epochs/batch_size/lr means 1 epoch of batches of 128 at 1e-3; no options at all
    also means 2 threads. ``max_batches`` caps the batches per epoch (for tests and quick trials; the card
    records it). Returns the card.
    """
    options = options or TrainingOptions(threads=DEFAULT_THREADS)
    seed, progress = options.seed, options.progress
    epochs = DEFAULT_EPOCHS if options.epochs is None else options.epochs
    batch_size = DEFAULT_BATCH_SIZE if options.batch_size is None else options.batch_size
    lr = DEFAULT_LR if options.lr is None else options.lr
    if epochs < 1 or batch_size < 1 or lr <= 0 or eval_n < 1 or speed_reps < 1:
        raise ValueError("need epochs, batch_size, eval_n, speed_reps >= 1 and lr > 0")
    models_dir = options.output_dir()
    target = resolve_device(options.device)
    model = load_opponent(opponent, device=target, models_dir=models_dir)
    pack = get_pack(model.pack_name, options.data_dir)
    images, labels = pack.tensors("train")
    name = generator_name(opponent)
    channels, height, _ = pack.image_shape

    with torch_threads(options.threads):
        with seeded(seed, target) as generator:
            net = AdvGANGenerator(channels=channels, width=width).to(target)
            disc = AdvGANDiscriminator(channels=channels, image_size=height).to(target)
            started = time.perf_counter()
            history = _fit(net, disc, model, images, labels, epochs, batch_size, lr, generator, progress, max_batches)
            wall_time = time.perf_counter() - started
        net.eval().requires_grad_(False)
        card: dict[str, Any] = {
            "schema_version": cards.CARD_SCHEMA_VERSION,
            "kind": "advgan-generator",
            "name": name,
            "attack": "advgan",
            "opponent": opponent,
            "opponent_sha256": model.card.get("checkpoint", {}).get("sha256"),
            "pack": pack.name,
            "description": (
                f"AdvGAN generator trained against `{opponent}`: one forward pass turns an image into an L∞ "
                "perturbation direction in [-1, 1], scaled by each sample's eps (one generator serves every eps)."
            ),
            "created": datetime.now(UTC).date().isoformat(),
            "data": {
                "dataset": pack.title,
                "split": "train",
                "train_size": len(labels),
                "image_shape": list(pack.image_shape),
                "source": str(pack.data_dir),
            },
            "architecture": {
                "generator": type(net).__name__,
                "layers": generator_architecture(width),
                "channels": channels,
                "width": width,
                "parameters": sum(p.numel() for p in net.parameters()),
                "discriminator": DISCRIMINATOR_ARCHITECTURE + " (training only, not saved)",
            },
            "training": {
                "command": f"arena train-advgan --opponent {opponent} --seed {seed}"
                + (f" --epochs {epochs}" if epochs != DEFAULT_EPOCHS else "")
                + (f" --width {width}" if width != WIDTH else "")
                + (f" --max-batches {max_batches}" if max_batches is not None else ""),
                "seed": seed,
                "epochs": epochs,
                "batches_per_epoch": history["batches_per_epoch"],
                "batch_size": batch_size,
                "lr": lr,
                "optimizer": "Adam (betas 0.5, 0.999) for generator and discriminator",
                "eps_range": list(EPS_RANGE),
                "eps_sampling": "uniform per image in eps_range",
                "loss": (
                    f"C&W margin (kappa {KAPPA}) on the opponent's logits + {GAN_WEIGHT} x least-squares GAN loss "
                    f"+ {HINGE_WEIGHT} x hinge max(0, ||delta||_2 / (eps sqrt(d)) - {HINGE_C})"
                ),
                "final_epoch_losses": history["final"],
                "wall_time_s": round(wall_time, 1),
                "device": str(target),
                **provenance(),
            },
        }
        measure_started = time.perf_counter()
        attack = _InMemoryAdvGAN(net, card)
        card["evaluation"] = evaluate_against_pgd(
            model, attack, pack_tensors=pack.tensors("test", n=eval_n), seed=seed, progress=progress
        )
        card["speed"] = measure_speed(model, attack, pack.tensors("test", n=speed_batch), reps=speed_reps, seed=seed)
        card["training"]["measure_time_s"] = round(time.perf_counter() - measure_started, 1)
    card["checkpoint"] = {"file": cards.checkpoint_path(models_dir, name).name, "sha256": ""}
    save_generator(net_state(net), card, models_dir, name)
    return card


def _fit(
    net: AdvGANGenerator,
    disc: AdvGANDiscriminator,
    model: ArenaModel,
    images: Tensor,
    labels: Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    progress: bool,
    max_batches: int | None,
) -> dict[str, Any]:
    device = model.device
    lo, hi = model.bounds
    opt_g = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    batches = batches_per_epoch(len(labels), batch_size)
    if max_batches is not None:
        batches = min(batches, max_batches)
    net.train()
    disc.train()
    final: dict[str, float] = {}
    with progress_bar(progress) as bar:
        task = bar.add_task("training AdvGAN", total=epochs * batches)
        for epoch in range(epochs):
            sums = torch.zeros(5)
            fooled = 0
            seen = 0
            for _, idx in shuffled_batches(len(labels), batch_size, generator, batches):
                x, y = images[idx].to(device), labels[idx].to(device)
                eps = EPS_RANGE[0] + (EPS_RANGE[1] - EPS_RANGE[0]) * torch.rand(len(idx), 1, 1, 1, generator=generator)
                eps = eps.to(device)
                direction = net(x)
                adv = torch.clamp(x + eps * direction, lo, hi)

                # Discriminator: clean images are "real" (1), perturbed ones "fake" (0).
                loss_d = (disc(x) - 1).pow(2).mean() + disc(adv.detach()).pow(2).mean()
                descend(loss_d, opt_d)

                logits = model(adv)
                loss_adv = adversarial_loss(logits, y)
                loss_gan = (disc(adv) - 1).pow(2).mean()
                loss_hinge = hinge_loss(direction)
                loss_g = loss_adv + GAN_WEIGHT * loss_gan + HINGE_WEIGHT * loss_hinge
                descend(loss_g, opt_g)

                with torch.no_grad():
                    sums += torch.stack([loss_g, loss_adv, loss_gan, loss_hinge, loss_d]).detach().cpu() * len(idx)
                    fooled += int((logits.argmax(1) != y).sum())
                seen += len(idx)
                bar.advance(task)
            means = (sums / seen).tolist()
            final = {
                "total": round(means[0], 4),
                "adversarial": round(means[1], 4),
                "gan": round(means[2], 4),
                "hinge": round(means[3], 4),
                "discriminator": round(means[4], 4),
                "train_fooled_rate": round(fooled / seen, 4),
            }
            bar.update(task, description=f"training AdvGAN (epoch {epoch + 1}/{epochs})")
            logger.info("epoch %d/%d: %s", epoch + 1, epochs, final)
    return {"final": final, "batches_per_epoch": batches}
