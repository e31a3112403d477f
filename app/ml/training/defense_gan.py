"""Train Defense-GAN's generator on Fashion-MNIST (``arena train --opponent fashion-defgan``).

Defense-GAN needs a generator whose range covers the data: every clean image must have a code z with G(z) close
to it, or the projection changes its class. A plain GAN of this size (the non-saturating loss of Goodfellow et
al. 2014, DCGAN's Adam settings) did not get there on this machine's budget: trained with this module's first
version, seed 0, its samples collapsed onto few classes (80% classified Shirt after 2 epochs) and after 10 epochs
(625 s) fashion-cnn read only 39.5% of the projected held-out images correctly. So the generator is trained as in
VAE-GAN (Larsen, Sønderby, Larochelle & Winther 2016): the GAN loss on samples G(z), z ~ N(0, I), plus a VAE's
reconstruction (binary cross-entropy, summed over pixels) and KL terms through an encoder that is thrown away
afterwards. The reconstruction term makes every training image reachable; the KL term keeps the codes that reach
them inside N(0, I), where the projection's random starts are drawn. The discriminator uses one-sided label
smoothing (real = 0.9); all train on training images 0..58,999.

After each epoch the generator is scored by what Defense-GAN needs from it: the wrapped classifier's accuracy on
the projections of 200 held-out training images (59,000..59,199), with the deployed L and R; the best epoch's
generator is kept (a lower GAN loss says little about how well the range covers the data). A checkpoint and card
are written after every epoch, so a run cut short leaves a loadable opponent whose card says how far it got. The
classifier is the committed ``fashion-cnn``, used as it is (its sha256 is pinned in the card).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from app.ml.defenses.defense_gan import DefenseGAN, Projection, project_onto_range
from app.ml.measure.evaluation import clean_predictions
from app.ml.measure.machine import cpu_summary
from app.ml.nets.fashion_gan import FashionDiscriminator, FashionEncoder, FashionGenerator
from app.ml.opponents import cards
from app.ml.opponents.registry import load_opponent
from app.ml.opponents.specs import OpponentSpec, opponent_spec
from app.ml.packs import get_pack
from app.ml.training.checkpoints import base_card, command_line, net_state, provenance, write_safetensors
from app.ml.training.fitting import LOG_EVERY, descend, shuffled_batches, training_progress
from app.ml.training.options import NetRun, TrainingOptions, net_run

logger = logging.getLogger(__name__)

GAN_TRAIN = (0, 59_000)
SELECTION = (59_000, 59_200)
REAL_LABEL = 0.9
ADAM_BETAS = (0.5, 0.999)
DISCRIMINATOR_LR = 2e-4
GAN_WEIGHT = 5.0  # of the non-saturating GAN loss, next to the VAE terms (nats per image)
CLEAN_N = 1000


def _save_generator(generator: FashionGenerator, card: dict[str, Any], models_dir: Path, name: str) -> None:
    """Generator checkpoint first, then the card carrying its hash (a cut between the two fails the hash check)."""
    metadata = {"opponent": name, "pack": card["pack"], "role": "generator"}
    path = cards.checkpoint_path(models_dir, name)
    card["generator"]["sha256"] = write_safetensors(net_state(generator), path, metadata)
    cards.write_card(card, models_dir, name)


def _selection_score(generator: FashionGenerator, base: Any, x: torch.Tensor, y: torch.Tensor, params: dict) -> dict:
    generator.eval()
    projection = Projection(params["steps"], params["restarts"], params["step_size"])
    projected, err = project_onto_range(generator, x, projection)
    with torch.no_grad():
        accuracy = (base(projected).argmax(1) == y).float().mean().item()
    generator.train()
    return {"heldout_projected_accuracy": accuracy, "heldout_mean_sq_error": round(err.mean().item(), 3)}


def train_defense_gan(spec: OpponentSpec, options: TrainingOptions) -> dict[str, Any]:
    """Train the generator, pick the epoch whose projections the classifier reads best, write it and its card."""
    with net_run(spec, options) as run:
        return _train(run, options.data_dir)


def _train(run: NetRun, data_dir: Path | None) -> dict[str, Any]:
    spec, device, models_dir, generator_rng = run.spec, run.device, run.models_dir, run.generator
    epochs, batch_size, lr, seed = run.epochs, run.batch_size, run.lr, run.seed
    params = {k: spec.defense_params[k] for k in ("steps", "restarts", "step_size")}
    pack = run.pack
    base = load_opponent(spec.wraps, device=device, models_dir=models_dir)
    images, labels = pack.tensors("train")
    sel_x, sel_y = images[SELECTION[0] : SELECTION[1]].to(device), labels[SELECTION[0] : SELECTION[1]].to(device)
    images = images[GAN_TRAIN[0] : GAN_TRAIN[1]]
    gen = FashionGenerator(int(spec.defense_params["latent_dim"])).to(device).train()
    enc = FashionEncoder(gen.latent_dim).to(device).train()
    disc = FashionDiscriminator().to(device).train()
    opt_g = torch.optim.Adam([*gen.parameters(), *enc.parameters()], lr=lr, betas=ADAM_BETAS)
    opt_d = torch.optim.Adam(disc.parameters(), lr=DISCRIMINATOR_LR, betas=ADAM_BETAS)
    steps_per_epoch = len(images) // batch_size
    card = base_card(spec, pack, base.net, models_dir, train_size=len(images))
    card["checkpoint"] = dict(base.card["checkpoint"])
    card["architecture"]["net"] = f"{base.card['architecture']['net']} (the {spec.wraps} checkpoint) + generator"
    card["architecture"]["generator_parameters"] = sum(p.numel() for p in gen.parameters())
    card["wraps"] = spec.wraps
    card["generator"] = {
        "file": cards.checkpoint_path(models_dir, spec.name).name,
        "sha256": "",
        "latent_dim": gen.latent_dim,
        "architecture": spec.architecture,
    }
    card["projection"] = {
        **params,
        "optimizer": "Adam on z (betas 0.9, 0.999), objective ||G(z) - x||² summed over pixels",
        "starts": "the same R codes drawn from N(0, I) with a fixed seed for every image; the restart with the "
        "lowest error is kept",
        "seed": 0,
    }
    training: dict[str, Any] = {
        "command": command_line(spec, seed, epochs),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": f"Adam (betas {ADAM_BETAS[0]}, {ADAM_BETAS[1]}), lr {lr} for generator and encoder, "
        f"{DISCRIMINATOR_LR} for the discriminator",
        "schedule": "constant learning rate",
        "augmentation": "none",
        "gan_loss": f"VAE-GAN (Larsen et al. 2016): BCE reconstruction + KL + {GAN_WEIGHT:g} x non-saturating GAN "
        f"loss for generator and encoder; discriminator with one-sided label smoothing (real = {REAL_LABEL}); a "
        "plain GAN collapsed here (see the module docstring of app/ml/training/defense_gan.py)",
        "train_images": f"training images {GAN_TRAIN[0]}..{GAN_TRAIN[1] - 1}",
        "model_selection": f"generator of the epoch whose projections (L={params['steps']}, R={params['restarts']}) "
        f"of training images {SELECTION[0]}..{SELECTION[1] - 1} (held out from GAN training) {spec.wraps} "
        "classifies best",
        "device": str(device),
        **provenance(),
        "epoch_log": [],
    }
    best = -1.0
    description = "Defense-GAN generator"
    with training_progress(run.progress, description, logger, epochs, steps_per_epoch, every=4 * LOG_EVERY) as progress:
        for epoch in range(epochs):
            d_total = g_total = 0.0
            for batch_no, idx in shuffled_batches(len(images), batch_size, generator_rng, steps_per_epoch):
                real = images[idx].to(device)
                mean, log_var = enc(real)
                noise = torch.randn(mean.shape, generator=generator_rng).to(device)
                prior = torch.randn(mean.shape, generator=generator_rng).to(device)
                # One generator pass for both, so batch norm sees the encoded and the prior codes together.
                decoded = gen(torch.cat([mean + (0.5 * log_var).exp() * noise, prior]))
                recon, fake = decoded[: len(real)], decoded[len(real) :]
                d_real, d_fake = disc(real), disc(fake.detach())
                loss_d = F.binary_cross_entropy_with_logits(
                    d_real, torch.full_like(d_real, REAL_LABEL)
                ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
                descend(loss_d, opt_d)
                d_out = disc(fake)
                rec = F.binary_cross_entropy(recon, real, reduction="sum") / len(real)
                kl = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum() / len(real)
                loss_g = rec + kl + GAN_WEIGHT * F.binary_cross_entropy_with_logits(d_out, torch.ones_like(d_out))
                descend(loss_g, opt_g)
                d_total += loss_d.item()
                g_total += loss_g.item()
                progress.advance()
                progress.log_batch(epoch, batch_no, "loss D %.3f G %.3f", loss_d.item(), loss_g.item())
            entry = {
                "epoch": epoch + 1,
                "loss_d": round(d_total / steps_per_epoch, 4),
                "loss_g": round(g_total / steps_per_epoch, 4),
                **_selection_score(gen, base, sel_x, sel_y, params),
                "elapsed_s": round(progress.seconds(), 1),
            }
            training["epoch_log"].append(entry)
            training["completed_epochs"] = epoch + 1
            logger.info("epoch %d/%d done: %s", epoch + 1, epochs, entry)
            card["training"] = training
            if entry["heldout_projected_accuracy"] > best:
                best = entry["heldout_projected_accuracy"]
                training["selected_epoch"] = epoch + 1
                training["wall_time_s"] = round(progress.seconds(), 1)
                _save_generator(gen.eval(), card, models_dir, spec.name)
                gen.train()
            else:
                cards.write_card(card, models_dir, spec.name)
    return measure_defended(spec.name, models_dir=models_dir, data_dir=data_dir)


def measure_defended(name: str, *, models_dir: Path, data_dir: Path | None = None) -> dict[str, Any]:
    """Clean accuracy of the defended system on the first 1,000 test images (and of the bare classifier on the
    same images), and the projection's seconds per image on one thread: written into the card."""
    spec = opponent_spec(name)
    model = load_opponent(name, models_dir=models_dir)
    assert isinstance(model, DefenseGAN)
    images, labels = get_pack(spec.pack_name, data_dir).tensors("test", n=CLEAN_N)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        predictions = clean_predictions(model, images)
        per_image = (time.perf_counter() - started) / len(labels)
        with torch.inference_mode():
            bare = (model.logits_raw(images).argmax(1) == labels).float().mean().item()
    finally:
        torch.set_num_threads(old_threads)
    card = dict(model.card)
    card["clean_accuracy"] = (predictions == labels).float().mean().item()
    card["clean_accuracy_n"] = len(labels)
    card["clean_accuracy_subset"] = f"first {len(labels)} test images"
    card["projection"]["undefended_accuracy_same_images"] = bare
    card["projection"]["seconds_per_image_1_thread"] = round(per_image, 4)
    card["projection"]["timing_note"] = (
        f"one forward (projection + classifier) per image, mean over the {len(labels)} images, 1 torch thread, "
        f"{cpu_summary()} shared with other jobs (load average {os.getloadavg()[0]:.1f})"
    )
    cards.write_card(card, models_dir, name)
    return card
