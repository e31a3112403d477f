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

import json
import logging
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor

from app.config import get_settings
from app.ml.attacks import get_attack
from app.ml.attacks.advgan import AdvGAN
from app.ml.measure.evaluation import per_image_generators, progress_bar
from app.ml.model import ArenaModel
from app.ml.nets.advgan import DISCRIMINATOR_ARCHITECTURE, AdvGANDiscriminator, AdvGANGenerator, generator_architecture
from app.ml.opponents import cards
from app.ml.opponents.registry import load_opponent, resolve_device
from app.ml.packs import get_pack
from app.ml.training.plain import _machine

logger = logging.getLogger(__name__)

EPS_RANGE = (0.02, 0.25)
KAPPA = 5.0
GAN_WEIGHT = 0.1
HINGE_WEIGHT = 1.0
HINGE_C = 0.8
EVAL_EPS: tuple[float, ...] = (0.05, 0.1, 0.2)
PGD_PARAMS: dict[str, Any] = {"steps": 10}
WIDTH = 16
DEFAULT_EPOCHS = 1


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
    *,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 128,
    lr: float = 1e-3,
    device: str = "cpu",
    models_dir: Path | None = None,
    data_dir: Path | None = None,
    threads: int | None = 2,
    eval_n: int = 1000,
    speed_reps: int = 10,
    speed_batch: int = 128,
    progress: bool = True,
    max_batches: int | None = None,
    width: int = WIDTH,
) -> dict[str, Any]:
    """Train ``advgan-<opponent>``, measure it, save ``<models_dir>/advgan-<opponent>.safetensors`` and its card.

    ``max_batches`` caps the batches per epoch (for tests and quick trials; the card records it).
    Returns the card.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0 or eval_n < 1 or speed_reps < 1:
        raise ValueError("need epochs, batch_size, eval_n, speed_reps >= 1 and lr > 0")
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    target = resolve_device(device)
    model = load_opponent(opponent, device=target, models_dir=models_dir)
    pack = get_pack(model.pack_name, data_dir)
    images, labels = pack.tensors("train")
    name = generator_name(opponent)
    channels, height, _ = pack.image_shape

    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        fork_devices = [target.index or 0] if target.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
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
                "threads": torch.get_num_threads(),
                "machine": _machine(),
                "torch_version": torch.__version__,
            },
        }
        measure_started = time.perf_counter()
        attack = _InMemoryAdvGAN(net, card)
        card["evaluation"] = evaluate_against_pgd(
            model, attack, pack_tensors=pack.tensors("test", n=eval_n), seed=seed, progress=progress
        )
        card["speed"] = measure_speed(model, attack, pack.tensors("test", n=speed_batch), reps=speed_reps, seed=seed)
        card["training"]["measure_time_s"] = round(time.perf_counter() - measure_started, 1)
    finally:
        torch.set_num_threads(old_threads)
    card["checkpoint"] = {"file": cards.checkpoint_path(models_dir, name).name, "sha256": ""}
    _save({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, card, models_dir, name)
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
    batches = (len(labels) + batch_size - 1) // batch_size
    if max_batches is not None:
        batches = min(batches, max_batches)
    net.train()
    disc.train()
    final: dict[str, float] = {}
    with progress_bar(progress) as bar:
        task = bar.add_task("training AdvGAN", total=epochs * batches)
        for epoch in range(epochs):
            order = torch.randperm(len(labels), generator=generator)
            sums = torch.zeros(5)
            fooled = 0
            seen = 0
            for b in range(batches):
                idx = order[b * batch_size : (b + 1) * batch_size]
                x, y = images[idx].to(device), labels[idx].to(device)
                eps = EPS_RANGE[0] + (EPS_RANGE[1] - EPS_RANGE[0]) * torch.rand(len(idx), 1, 1, 1, generator=generator)
                eps = eps.to(device)
                direction = net(x)
                adv = torch.clamp(x + eps * direction, lo, hi)

                # Discriminator: clean images are "real" (1), perturbed ones "fake" (0).
                loss_d = (disc(x) - 1).pow(2).mean() + disc(adv.detach()).pow(2).mean()
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()

                logits = model(adv)
                loss_adv = adversarial_loss(logits, y)
                loss_gan = (disc(adv) - 1).pow(2).mean()
                loss_hinge = hinge_loss(direction)
                loss_g = loss_adv + GAN_WEIGHT * loss_gan + HINGE_WEIGHT * loss_hinge
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()

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


def _predict(model: ArenaModel, images: Tensor, batch: int) -> Tensor:
    with torch.inference_mode():
        return torch.cat([model(images[i : i + batch]).argmax(1) for i in range(0, len(images), batch)])


def evaluate_against_pgd(
    model: ArenaModel,
    attack: AdvGAN,
    *,
    pack_tensors: tuple[Tensor, Tensor],
    seed: int = 0,
    eps_list: tuple[float, ...] = EVAL_EPS,
    progress: bool = False,
    batch: int = 500,
) -> dict[str, Any]:
    """Success of AdvGAN and of PGD-10 (random start seeded per image) at each eps, on the same images."""
    images, labels = pack_tensors
    images, labels = images.to(model.device), labels.to(model.device)
    n = len(labels)
    clean_ok = _predict(model, images, batch) == labels
    pgd = get_attack("pgd", **PGD_PARAMS)
    rows = []
    with progress_bar(progress) as bar:
        task = bar.add_task("measuring AdvGAN vs PGD-10", total=2 * len(eps_list) * n)
        for eps in eps_list:
            row: dict[str, Any] = {"eps": eps}
            for key, atk in (("advgan", attack), ("pgd10", pgd)):
                advs, l2 = [], []
                for start in range(0, n, batch):
                    sl = slice(start, min(start + batch, n))
                    gens = per_image_generators(range(sl.start, sl.stop), seed)
                    result = atk(model, images[sl], labels[sl], eps, generator=gens)
                    advs.append(result.adversarial)
                    l2.append(result.l2)
                    bar.advance(task, sl.stop - sl.start)
                still_right = _predict(model, torch.cat(advs), batch) == labels
                fooled = clean_ok & ~still_right
                l2_all = torch.cat(l2)
                row[f"{key}_success"] = round(int(fooled.sum()) / max(int(clean_ok.sum()), 1), 4)
                row[f"{key}_accuracy"] = round(int((clean_ok & still_right).sum()) / n, 4)
                row[f"{key}_median_l2"] = round(float(l2_all[fooled].median()), 3) if bool(fooled.any()) else None
            rows.append(row)
    return {
        "split": "test",
        "n": n,
        "subset": f"first {n} test images",
        "clean_accuracy": round(int(clean_ok.sum()) / n, 4),
        "success_means": "share of the images the opponent classifies correctly when clean that the attack fools",
        "pgd": {"attack": "pgd", "params": {**PGD_PARAMS, "step_size": "2.5*eps/steps", "random_start": True}},
        "seeding": f"PGD random starts seeded per image with seed + test index (seed {seed}); AdvGAN is deterministic",
        "rows": rows,
    }


def measure_speed(
    model: ArenaModel, attack: AdvGAN, batch: tuple[Tensor, Tensor], *, reps: int = 10, seed: int = 0, eps: float = 0.1
) -> dict[str, Any]:
    """ms/image of the whole AdvGAN call and the whole PGD-10 call on one batch, interleaved side by side."""
    images, labels = batch[0].to(model.device), batch[1].to(model.device)
    pgd = get_attack("pgd", **PGD_PARAMS)
    net, _ = attack.generator_net(model)

    def run_advgan() -> None:
        attack(model, images, labels, eps)

    def run_pgd() -> None:
        pgd(model, images, labels, eps, generator=torch.Generator().manual_seed(seed))

    def run_generator() -> None:
        with torch.inference_mode():
            net(images)

    contenders = {"advgan": run_advgan, "pgd10": run_pgd, "generator_forward": run_generator}
    for fn in contenders.values():  # warm-up: oneDNN picks kernels on the first calls
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for rep in range(reps):
        for key in names[rep % len(names) :] + names[: rep % len(names)]:
            start = time.perf_counter()
            contenders[key]()
            times[key].append(time.perf_counter() - start)
    speedup = statistics.median(p / a for p, a in zip(times["pgd10"], times["advgan"], strict=True))
    per_image = {k: round(statistics.median(v) * 1000 / len(labels), 4) for k, v in times.items()}
    return {
        "batch": len(labels),
        "eps": eps,
        "reps": reps,
        "threads": torch.get_num_threads(),
        "advgan_ms_per_image": per_image["advgan"],
        "pgd10_ms_per_image": per_image["pgd10"],
        "generator_forward_ms_per_image": per_image["generator_forward"],
        "pgd10_over_advgan": round(speedup, 2),
        "pgd10_over_generator_forward": round(per_image["pgd10"] / per_image["generator_forward"], 2),
        "method": (
            "median over interleaved repetitions of whole attack calls (input checks, projection and the success "
            "forward included); pgd10_over_advgan is the median of the paired ratios"
        ),
        "machine": _machine(),
    }


def _save(state: dict[str, Tensor], card: dict[str, Any], models_dir: Path, name: str) -> None:
    """Checkpoint first, then the card carrying its hash (a cut between the two is caught by the hash check)."""
    ckpt = cards.checkpoint_path(models_dir, name)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt.with_name(f".{ckpt.name}.tmp-{os.getpid()}")
    try:
        save_file(state, str(tmp), metadata={"generator": name, "opponent": card["opponent"]})
        os.chmod(tmp, 0o644)
        card["checkpoint"]["sha256"] = cards.sha256_file(tmp)
        os.replace(tmp, ckpt)
    finally:
        tmp.unlink(missing_ok=True)
    text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
    cards.atomic_write_bytes(cards.card_path(models_dir, name), text.encode("utf-8"))
    cards.atomic_write_bytes(cards.markdown_path(models_dir, name), render_generator_card(card).encode("utf-8"))
    logger.info("wrote %s and its card", ckpt)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def render_generator_card(card: dict[str, Any]) -> str:
    """The Markdown twin of an AdvGAN generator card (generated, never edited by hand)."""
    arch, train, ev, speed = card["architecture"], card["training"], card["evaluation"], card["speed"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"*Generated from `{card['name']}.json` by `app/ml/training/advgan.py`; do not edit by hand.*",
        "",
        card["description"],
        "",
        "## Data and training",
        "",
        f"- Opponent: `{card['opponent']}` (checkpoint sha256 `{card['opponent_sha256']}`), frozen, eval mode",
        f"- Data: {card['data']['dataset']} {card['data']['split']} split, {card['data']['train_size']:,} images "
        f"(`{card['data']['source']}`)",
        f"- Command: `{train['command']}`",
        f"- Seed {train['seed']}, {train['epochs']} epochs x {train['batches_per_epoch']} batches of "
        f"{train['batch_size']}, {train['optimizer']}, lr {train['lr']}",
        f"- eps per image: {train['eps_sampling']} [{train['eps_range'][0]}, {train['eps_range'][1]}]",
        f"- Loss: {train['loss']}",
        f"- Last epoch: {train['final_epoch_losses']}",
        f"- Wall time {train['wall_time_s']:.0f} s training + {train.get('measure_time_s', 0):.0f} s measuring on "
        f"{train['device']} ({train['threads']} threads, {train['machine']}), torch {train['torch_version']}",
        "",
        "## Architecture",
        "",
        f"- Generator `{arch['generator']}`: {arch['layers']}; {arch['parameters']:,} parameters",
        f"- Discriminator: {arch['discriminator']}",
        "",
        "## Success against PGD-10",
        "",
        f"On the {ev['subset']} (n = {ev['n']}; clean accuracy {_pct(ev['clean_accuracy'])}). Success = "
        f"{ev['success_means']}. {ev['seeding']}.",
        "",
        "| eps | eps x 255 | AdvGAN success | PGD-10 success | AdvGAN accuracy | PGD-10 accuracy | AdvGAN median L2 "
        "| PGD-10 median L2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ev["rows"]:
        lines.append(
            f"| {r['eps']:g} | {r['eps'] * 255:.1f} | {_pct(r['advgan_success'])} | {_pct(r['pgd10_success'])} | "
            f"{_pct(r['advgan_accuracy'])} | {_pct(r['pgd10_accuracy'])} | {r['advgan_median_l2']} | "
            f"{r['pgd10_median_l2']} |"
        )
    lines += [
        "",
        "## Speed",
        "",
        f"Batch of {speed['batch']} test images at eps {speed['eps']}, {speed['reps']} interleaved repetitions, "
        f"{speed['threads']} threads ({speed['machine']}); {speed['method']}.",
        "",
        "| | ms/image |",
        "|---|---|",
        f"| AdvGAN, whole attack call | {speed['advgan_ms_per_image']:.3f} |",
        f"| AdvGAN generator forward alone | {speed['generator_forward_ms_per_image']:.3f} |",
        f"| PGD-10, whole attack call | {speed['pgd10_ms_per_image']:.3f} |",
        "",
        f"PGD-10 / AdvGAN: **{speed['pgd10_over_advgan']:.1f}x** per image (whole calls); PGD-10 / generator forward "
        f"alone: {speed['pgd10_over_generator_forward']:.1f}x.",
        "",
        "## Checkpoint",
        "",
        f"`{card['checkpoint']['file']}` (safetensors), sha256 `{card['checkpoint']['sha256']}`",
        "",
    ]
    return "\n".join(lines)
