"""Train the certified opponent with interval bound propagation (Gowal et al. 2018).

The loss mixes the ordinary cross-entropy with the cross-entropy of the worst case IBP can bound:
``kappa * CE(z(x), y) + (1 - kappa) * CE(-m(x, eps), y)``, where ``m[j]`` is IBP's lower bound on
``z_y - z_j`` over the eps-box (so ``-m[j]`` bounds ``z_j - z_y`` from above, and ``-m[y] = 0``). As in the
paper, the first epoch is clean training (eps 0, kappa 1); eps then ramps linearly to the training eps while kappa
falls from 1 to its final value, and Adam's learning rate drops tenfold twice near the end. Without the ramp, the
bound at full eps is so loose at initialisation that the net learns nothing.

A checkpoint and card are written whenever the held-out certified accuracy (the last 1,000 training images,
never the test set) improves, and the card's training log after every epoch, so a run cut short leaves the
best epoch so far, loadable, with a card that says how far it got.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from app.ml.defenses.certified import CertifiedModel, measure_certification
from app.ml.defenses.interval import input_box, margin_lower_bounds, normalise_box
from app.ml.opponents import cards
from app.ml.opponents.registry import pack_model
from app.ml.opponents.specs import OpponentSpec, opponent_spec
from app.ml.packs import DataPack, get_pack
from app.ml.training.checkpoints import base_card, command_line, provenance, save_net
from app.ml.training.fitting import batches_per_epoch, descend, shuffled_batches, training_progress
from app.ml.training.options import NetRun, TrainingOptions, net_run

logger = logging.getLogger(__name__)

HELD_OUT = 1000
LOG_EVERY = 100


def schedule_at(progress: float, params: dict[str, Any]) -> tuple[float, float]:
    """(eps, kappa) at ``progress`` epochs into training: clean warm-up, then a linear ramp, then constant."""
    warmup, ramp = float(params["warmup_epochs"]), float(params["ramp_epochs"])
    share = min(1.0, max(0.0, (progress - warmup) / ramp))
    kappa_end = float(params["kappa_end"])
    return float(params["train_eps"]) * share, 1.0 - (1.0 - kappa_end) * share


def ibp_loss(
    net: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    kappa: float,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mixed loss above (and the two parts, for the log)."""
    natural = F.cross_entropy(net((x - mean) / std), y)
    if eps <= 0:
        return natural, natural.detach(), torch.zeros(())
    margins = margin_lower_bounds(net, normalise_box(input_box(x, eps), mean, std), y)
    robust = F.cross_entropy(-margins, y)
    return kappa * natural + (1 - kappa) * robust, natural.detach(), robust.detach()


def wrap_certified(
    net: nn.Module, pack: DataPack, device: torch.device, name: str, card: dict[str, Any] | None = None
) -> CertifiedModel:
    return cast(CertifiedModel, pack_model(net, pack, device, name, wrapper=CertifiedModel, card=card))


def train_certified(spec: OpponentSpec, options: TrainingOptions) -> dict[str, Any]:
    with net_run(spec, options) as run:
        return _train_ibp(run)


def _train_ibp(run: NetRun) -> dict[str, Any]:
    spec, pack, device, generator, models_dir = run.spec, run.pack, run.device, run.generator, run.models_dir
    epochs, batch_size, lr, seed = run.epochs, run.batch_size, run.lr, run.seed
    params = dict(spec.defense_params)
    eps = float(params["eps"])
    images, labels = pack.tensors("train")
    val_x, val_y = images[-HELD_OUT:], labels[-HELD_OUT:]
    images, labels = images[:-HELD_OUT], labels[:-HELD_OUT]
    test_x, test_y = pack.tensors("test")
    mean = torch.tensor(pack.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(pack.std, device=device).view(1, -1, 1, 1)
    net = spec.build_net().to(device).train()
    steps_per_epoch = batches_per_epoch(len(labels), batch_size)
    milestones = [round(epochs * f) * steps_per_epoch for f in params["lr_drops_at"]]
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    card = base_card(spec, pack, net, models_dir, train_size=len(labels))
    training = {
        "command": command_line(spec, seed, epochs),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": "Adam",
        "schedule": f"learning rate {lr}, divided by 10 after {', '.join(f'{f:.0%}' for f in params['lr_drops_at'])}"
        " of the epochs",
        "augmentation": "none",
        "device": str(device),
        **provenance(),
        "ibp_training": {
            "paper": "Gowal et al. 2018, On the Effectiveness of Interval Bound Propagation for Training "
            "Verifiably Robust Models",
            "loss": "kappa * CE(z(x), y) + (1 - kappa) * CE(-m(x, eps), y), m[j] = IBP lower bound on z_y - z_j",
            "eps": eps,
            "train_eps": float(params["train_eps"]),
            "kappa_end": float(params["kappa_end"]),
            "eps_schedule": f"eps 0 and kappa 1 for {params['warmup_epochs']} epoch(s), then linear ramp to "
            f"eps {params['train_eps']} and kappa {params['kappa_end']} over {params['ramp_epochs']} epochs",
            "model_selection": f"checkpoint of the epoch with the best IBP-certified accuracy at eps {eps:g} on the "
            f"last {HELD_OUT:,} training images (held out from training)",
        },
        "epoch_log": [],
    }
    best = -1.0
    with training_progress(run.progress, "IBP training", logger, epochs, steps_per_epoch, every=LOG_EVERY) as progress:
        for epoch in range(epochs):
            sums = {"loss": 0.0, "natural": 0.0, "robust": 0.0}
            seen = 0
            for batch_no, idx in shuffled_batches(len(labels), batch_size, generator):
                x, y = images[idx].to(device), labels[idx].to(device)
                batch_eps, kappa = schedule_at(epoch + batch_no / steps_per_epoch, params)
                loss, natural, robust = ibp_loss(net, x, y, batch_eps, kappa, mean, std)
                descend(loss, optimizer, schedule)
                for key, value in (("loss", loss.detach()), ("natural", natural), ("robust", robust)):
                    sums[key] += float(value) * len(idx)
                seen += len(idx)
                progress.advance()
                progress.log_batch(
                    epoch, batch_no, "eps %.4f kappa %.3f loss %.4f", batch_eps, kappa, sums["loss"] / seen
                )
            net.eval()
            model = wrap_certified(net, pack, device, spec.name)
            with torch.no_grad():
                val_clean = (model(val_x.to(device)).argmax(1) == val_y.to(device)).float().mean().item()
            val_certified = model.certifies(val_x, val_y, eps).float().mean().item()
            net.train()
            entry = {
                "epoch": epoch + 1,
                "train_eps": round(batch_eps, 4),
                "kappa": round(kappa, 3),
                "train_loss": round(sums["loss"] / seen, 4),
                "train_natural_ce": round(sums["natural"] / seen, 4),
                "train_ibp_ce": round(sums["robust"] / seen, 4),
                "heldout_clean": val_clean,
                "heldout_certified": val_certified,
                "elapsed_s": round(progress.seconds(), 1),
            }
            training["epoch_log"].append(entry)
            training["completed_epochs"] = epoch + 1
            training["wall_time_s"] = round(progress.seconds(), 1)
            logger.info("epoch %d/%d done: %s", epoch + 1, epochs, entry)
            card["training"] = training
            if val_certified >= best:
                best = val_certified
                training["selected_epoch"] = epoch + 1
                best_state = copy.deepcopy(net.state_dict())
                with torch.no_grad():
                    answers = torch.cat(
                        [model(test_x[i : i + 1000].to(device)).argmax(1).cpu() for i in range(0, len(test_y), 1000)]
                    )
                card["clean_accuracy"] = (answers == test_y).float().mean().item()
                card["clean_accuracy_n"] = len(test_y)
                save_net(net, card, models_dir, spec.name)
                logger.info("saved epoch %d (held-out certified %.4f)", epoch + 1, val_certified)
            else:
                cards.write_card(card, models_dir, spec.name)
    # The certified section (float64 bounds, 16 passes over the test set) is measured once, on the kept epoch.
    net.load_state_dict(best_state)
    model = wrap_certified(net.eval(), pack, device, spec.name, card=card)
    card["certified"] = certified_section(model, test_x, test_y, eps, training["command"])
    cards.write_card(card, models_dir, spec.name)
    logger.info("certified: %s", card["certified"])
    return card


def certified_section(
    model: CertifiedModel, images: torch.Tensor, labels: torch.Tensor, eps: float, command: str
) -> dict[str, Any]:
    """The card's ``certified`` block for the checkpoint ``model.card`` names: at eps/2, eps and 1.5 eps."""
    section = measure_certification(model, images, labels, (eps / 2, eps, eps * 1.5))
    section.update(
        command=command,
        eps=eps,
        subset=f"all {len(labels):,} test images" if len(labels) == 10_000 else f"first {len(labels):,} test images",
        checkpoint_sha256=model.card.get("checkpoint", {}).get("sha256"),
        selected_epoch=model.card.get("training", {}).get("selected_epoch"),
    )
    return section


def ensure_certified_section(model: CertifiedModel, models_dir: Path, data_dir: Path | None, command: str) -> None:
    """Measure the card's ``certified`` block when it is missing or was measured on another checkpoint (a
    training run cut short before its end writes none): what ``arena defense-eval`` does first."""
    card = cards.read_card(cards.card_path(models_dir, model.name))
    sha = card.get("checkpoint", {}).get("sha256")
    if card.get("certified", {}).get("checkpoint_sha256") == sha:
        return
    spec = opponent_spec(model.name)
    images, labels = get_pack(spec.pack_name, data_dir).tensors("test")
    card["certified"] = certified_section(model, images, labels, float(spec.defense_params["eps"]), command)
    cards.write_card(card, models_dir, model.name)
    logger.info("certified: %s", card["certified"])
