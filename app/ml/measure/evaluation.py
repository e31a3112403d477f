"""Measurements for model cards: clean accuracy, accuracy under attack, and the staircase start.

Random starts are seeded per image (``seed + index in the test set``), so a figure does not depend on the batch
size it was computed with, and rerunning with the same seed reproduces it exactly on the same machine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from torch import Tensor

from app.ml.attacks import get_attack
from app.ml.attacks.base import Attack
from app.ml.model import ArenaModel
from app.ml.packs.base import DataPack

EVAL_BATCH = 500
ROBUSTNESS_EPS: tuple[float, ...] = (0.05, 0.1, 0.2)
# PGD-20 with step_size None, i.e. 2.5 * eps / 20, from a random start: the card's stated protocol.
ROBUSTNESS_ATTACKS: dict[str, dict[str, Any]] = {
    "fgsm": {},
    "pgd": {"steps": 20, "step_size": None, "random_start": True},
}
STAIRCASE_CANDIDATES: tuple[float, ...] = tuple(k / 255 for k in range(1, 65))
STAIRCASE_FOOL_RATE = 0.5


def progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )


def _batches(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def clean_predictions(model: ArenaModel, images: Tensor, *, batch_size: int = EVAL_BATCH) -> Tensor:
    """Predicted classes of ``images`` (on the model's device), computed in batches without autograd."""
    out = []
    with torch.inference_mode():
        for sl in _batches(len(images), batch_size):
            out.append(model(images[sl].to(model.device)).argmax(1).cpu())
    return torch.cat(out)


def clean_accuracy(model: ArenaModel, pack: DataPack, *, n: int | None = None) -> tuple[float, int]:
    """Accuracy on the first ``n`` test images (all when None); returns (accuracy, n)."""
    images, labels = pack.tensors("test", n=n)
    correct = (clean_predictions(model, images) == labels).sum().item()
    return correct / len(labels), len(labels)


def per_image_generators(indices: Sequence[int], seed: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + int(i)) for i in indices]


def _fooled(
    model: ArenaModel,
    attack: Attack,
    images: Tensor,
    labels: Tensor,
    indices: Tensor,
    eps: float,
    seed: int,
    progress: Progress,
    task: TaskID,
) -> Tensor:
    """Success mask of ``attack`` at ``eps`` over all images, attacked in batches."""
    masks = []
    for sl in _batches(len(images), EVAL_BATCH):
        result = attack(
            model,
            images[sl].to(model.device),
            labels[sl].to(model.device),
            eps,
            generator=per_image_generators(indices[sl].tolist(), seed),
        )
        masks.append(result.success.cpu())
        progress.advance(task, sl.stop - sl.start)
    return torch.cat(masks)


def evaluate_robustness(
    model: ArenaModel,
    pack: DataPack,
    *,
    n: int = 1000,
    eps_list: Sequence[float] = ROBUSTNESS_EPS,
    attacks: Mapping[str, Mapping[str, Any]] = ROBUSTNESS_ATTACKS,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Accuracy under each attack at each eps on the first ``n`` test images (an image counts as correct when
    the model still gets it right after the attack; images it already got wrong count as wrong)."""
    images, labels = pack.tensors("test", n=n)
    indices = torch.arange(len(labels))
    clean_ok = clean_predictions(model, images) == labels
    results = []
    with progress_bar(progress) as bar:
        for attack_name, params in attacks.items():
            attack = get_attack(attack_name, **params)
            for eps in eps_list:
                task = bar.add_task(f"{attack_name} eps={eps:g}", total=len(labels))
                fooled = _fooled(model, attack, images, labels, indices, eps, seed, bar, task)
                results.append(
                    {
                        "attack": attack_name,
                        "params": dict(params),
                        "eps": eps,
                        "accuracy": (clean_ok & ~fooled).sum().item() / len(labels),
                    }
                )
    return {
        "split": "test",
        "n": len(labels),
        "subset": f"first {len(labels)} test images",
        "seed": seed,
        "random_start_seeding": f"random starts seeded per image with seed + test index (seed {seed})",
        "step_size_none_means": "2.5*eps/steps",
        "clean_accuracy": clean_ok.sum().item() / len(labels),
        "results": results,
    }


def find_min_effective_eps(
    model: ArenaModel,
    pack: DataPack,
    *,
    n: int = 1000,
    candidates: Sequence[float] = STAIRCASE_CANDIDATES,
    seed: int = 0,
    steps: int = 20,
    progress: bool = False,
    attack: str = "pgd",
    attack_params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The lowest candidate eps at which PGD fools the model on at least half of the first ``n`` test images
    it classifies correctly when clean.

    ``attack``/``attack_params`` replace PGD-``steps`` with another attack (e.g. ``square`` for an opponent
    without a usable gradient, whose rounds are played with query or transfer attacks).

    Candidates are tried in ascending order and the scan stops at the first that qualifies, so the answer is
    the lowest one by definition, without assuming the fooled rate grows monotonically with eps.
    """
    if n < 1000:
        raise ValueError(f"n must be at least 1000 for a stable staircase start, got {n}")
    grid = sorted(set(candidates))
    if not grid or grid[0] <= 0:
        raise ValueError("candidates must be positive eps values")
    images, labels = pack.tensors("test")
    correct = torch.nonzero(clean_predictions(model, images) == labels).flatten()
    if len(correct) < n:
        raise ValueError(f"only {len(correct)} test images are classified correctly, fewer than n={n}")
    indices = correct[:n]
    images, labels = images[indices], labels[indices]
    if attack == "pgd" and attack_params is None:
        params: dict[str, Any] = {"steps": steps, "random_start": True}
        described = f"PGD-{steps} (step 2.5*eps/{steps}, random start seeded per image)"
    else:
        params = dict(attack_params or {})
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        described = f"{attack} ({shown}; randomness seeded per image)" if shown else f"{attack} (seeded per image)"
    runner = get_attack(attack, **params)
    measured = []
    with progress_bar(progress) as bar:
        for eps in grid:
            task = bar.add_task(f"staircase eps={eps * 255:.0f}/255", total=n)
            fooled = _fooled(model, runner, images, labels, indices, eps, seed, bar, task)
            rate = fooled.sum().item() / n
            measured.append({"eps": eps, "fooled_rate": rate, "n": n})
            if rate >= STAIRCASE_FOOL_RATE:
                return {
                    "min_eps": eps,
                    "min_eps_255": round(eps * 255),
                    "rule": (
                        f"lowest eps on the grid k/255 at which {described} fools the model on >= "
                        f"{STAIRCASE_FOOL_RATE:.0%} of the first {n} test images it classifies correctly when "
                        "clean; candidates tried in ascending order"
                    ),
                    "attack": attack,
                    "params": params,
                    "n": n,
                    "seed": seed,
                    "measured": measured,
                }
    raise ValueError(
        f"no candidate eps up to {grid[-1]:.4f} fools {STAIRCASE_FOOL_RATE:.0%} of the images; extend the grid"
    )
