"""The AdvGAN generator's checkpoint and card (JSON and its generated Markdown twin)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from torch import Tensor

from app.ml.opponents import cards
from app.ml.training.checkpoints import write_safetensors

logger = logging.getLogger(__name__)


def save_generator(state: dict[str, Tensor], card: dict[str, Any], models_dir: Path, name: str) -> None:
    """Checkpoint first, then the card carrying its hash (a cut between the two is caught by the hash check)."""
    ckpt = cards.checkpoint_path(models_dir, name)
    metadata = {"generator": name, "opponent": card["opponent"]}
    card["checkpoint"]["sha256"] = write_safetensors(state, ckpt, metadata)
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
        *cards.checkpoint_lines(card),
    ]
    return "\n".join(lines)
