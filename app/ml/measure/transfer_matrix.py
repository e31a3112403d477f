"""The transfer matrix: how often an image crafted on one model (the surrogate, rows) fools another (the target,
columns), for every pair of opponents of a pack.

Definition of a cell (also written into the output): among the test images that the target AND the surrogate
both classify correctly when clean, the share that the target misclassifies after the surrogate's white-box
attack at ``eps`` (L∞). The diagonal (surrogate = target) is therefore the white-box success rate. Each
surrogate's adversarial images are crafted once, with random starts seeded per image (``seed + test index``),
and shown to every target; that is exactly what ``get_attack("transfer", surrogate=row, base=attack)`` does
for one target. Rows are the differentiable opponents; columns are all opponents, non-differentiable included.
"""

from __future__ import annotations

import json
import math
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from app.config import get_settings
from app.ml.attacks import get_attack
from app.ml.measure.evaluation import EVAL_BATCH, clean_predictions, per_image_generators, progress_bar
from app.ml.measure.machine import cpu_summary
from app.ml.model import ArenaModel
from app.ml.opponents import cards
from app.ml.opponents.registry import load_opponent
from app.ml.opponents.specs import available_opponents, opponent_pack, opponent_spec
from app.ml.packs import get_pack

DEFINITION = (
    "cell = among the test images that the target AND the surrogate both classify correctly when clean, the "
    "share that the target misclassifies on the surrogate's adversarial image (L-inf, eps as stated); the "
    "diagonal (surrogate = target) is the white-box success rate"
)
MATRIX_NAME = "transfer-matrix"
Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal


def wilson95(k: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of k of n (n >= 1): app.stats.intervals' arithmetic, which ml may not import (a test
    holds the two equal)."""
    p, z2 = k / n, Z_95 * Z_95
    centre, half = (
        (p + z2 / (2 * n)) / (1 + z2 / n),
        (Z_95 / (1 + z2 / n)) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)),
    )
    return (0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half))


def matrix_paths(models_dir: Path) -> tuple[Path, Path]:
    return models_dir / f"{MATRIX_NAME}.json", models_dir / f"{MATRIX_NAME}.md"


def _prefix_length(correct: dict[str, torch.Tensor], surrogates: list[str], targets: list[str], n: int) -> int:
    """Fewest leading test images such that every cell has at least ``n`` images both models get right."""
    total = len(next(iter(correct.values())))
    needed = 0
    for s in surrogates:
        for t in targets:
            both = torch.cumsum((correct[s] & correct[t]).to(torch.int64), 0)
            if int(both[-1]) < n:
                raise ValueError(f"{s} and {t} agree on only {int(both[-1])} correct test images, fewer than n={n}")
            needed = max(needed, int(torch.searchsorted(both, n)) + 1)
    return min(needed, total)


def compute_transfer_matrix(
    *,
    pack_name: str = "fashion",
    eps: float = 0.1,
    n: int = 500,
    attack: str = "pgd",
    steps: int = 20,
    seed: int = 0,
    models_dir: Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    opponents: list[str] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Measure the matrix; returns the JSON-ready result (see the module docstring for the definition).

    ``threads`` sets torch's intra-op threads for the run and restores the previous value afterwards.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _compute(pack_name, eps, n, attack, steps, seed, models_dir, device, progress, opponents)
    finally:
        torch.set_num_threads(previous)


def _compute(
    pack_name: str,
    eps: float,
    n: int,
    attack: str,
    steps: int,
    seed: int,
    models_dir: Path | None,
    device: str | torch.device,
    progress: bool,
    opponents: list[str] | None,
) -> dict[str, Any]:
    if not 0 < eps <= 1:
        raise ValueError(f"eps must lie in (0, 1] (pixel units), got {eps}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    # Check the attack before loading anything, so a typo fails at once.
    base = get_attack(attack)
    if base.threat_model != "white-box" or base.norm != "linf":
        raise ValueError(f"--attack must be a white-box L-inf attack (pgd, fgsm, mi-fgsm), got {attack!r}")
    params: dict[str, Any] = {"steps": steps} if "steps" in type(base).Params.model_fields else {}
    base = get_attack(attack, **params)
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    names = opponents or [o for o in available_opponents() if opponent_pack(o) == pack_name]
    models: dict[str, ArenaModel] = {name: load_opponent(name, device=device, models_dir=models_dir) for name in names}
    surrogates = [name for name in names if models[name].differentiable]
    if not surrogates:
        raise ValueError("no differentiable opponent to craft on; train one (e.g. `arena train --pack fashion`)")
    pack = get_pack(pack_name)
    all_images, all_labels = pack.tensors("test")
    started = time.perf_counter()
    correct = {name: clean_predictions(model, all_images) == all_labels for name, model in models.items()}
    prefix = _prefix_length(correct, surrogates, names, n)
    images, labels = all_images[:prefix], all_labels[:prefix]
    cells: list[dict[str, Any]] = []
    with progress_bar(progress) as bar:
        task = bar.add_task(
            f"crafting {attack} eps={eps:g} on {len(surrogates)} surrogates", total=len(surrogates) * prefix
        )
        for s in surrogates:
            surrogate = models[s]
            adversarial = []
            for start in range(0, prefix, EVAL_BATCH):
                stop = min(start + EVAL_BATCH, prefix)
                result = base(
                    surrogate,
                    images[start:stop].to(surrogate.device),
                    labels[start:stop].to(surrogate.device),
                    eps,
                    generator=per_image_generators(range(start, stop), seed),
                )
                adversarial.append(result.adversarial.cpu())
                bar.advance(task, stop - start)
            crafted = torch.cat(adversarial)
            for t in names:
                fooled_on = clean_predictions(models[t], crafted) != labels
                eligible = correct[s][:prefix] & correct[t][:prefix]
                cell_n = int(eligible.sum())
                fooled = int((eligible & fooled_on).sum())
                low, high = wilson95(fooled, cell_n)
                cells.append(
                    {
                        "surrogate": s,
                        "target": t,
                        "white_box": s == t,
                        "n": cell_n,
                        "fooled": fooled,
                        "rate": fooled / cell_n,
                        "wilson95": [low, high],
                    }
                )
    wall = time.perf_counter() - started
    command = f"arena transfer-matrix --eps {eps:g} --n {n} --attack {attack} --steps {steps} --seed {seed}"
    return {
        "name": MATRIX_NAME,
        "pack": pack_name,
        "command": command,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "definition": DEFINITION,
        "eps": eps,
        "eps_255": round(eps * 255, 1),
        "norm": "linf",
        "attack": {"name": attack, "params": base.params.model_dump()},
        "seed": seed,
        "seeding": f"random starts seeded per image with seed + test index (seed {seed})",
        "n_min": n,
        "images": prefix,
        "subset": f"first {prefix} test images (the fewest that give every cell at least {n} eligible images)",
        "surrogates": surrogates,
        "targets": names,
        "opponents": {
            name: {
                "differentiable": models[name].differentiable,
                "kind": opponent_spec(name).kind,
                "architecture": models[name].card.get("architecture", {}).get("layers", ""),
                "clean_accuracy": models[name].card.get("clean_accuracy"),
            }
            for name in names
        },
        "cells": cells,
        "wall_time_s": round(wall, 1),
        "device": str(next(iter(models.values())).device),
        "threads": torch.get_num_threads(),
        "machine": cpu_summary(),
        "python": platform.python_version(),
        "torch_version": torch.__version__,
    }


def render_matrix_markdown(result: dict[str, Any]) -> str:
    """The Markdown twin of the JSON: one table of rates with n and the Wilson 95% interval per cell."""
    cells = {(c["surrogate"], c["target"]): c for c in result["cells"]}
    lines = [
        f"# Transfer matrix ({result['pack']})",
        "",
        f"*Generated by `{result['command']}` on {result['created']}; do not edit by hand.*",
        "",
        f"Attack `{result['attack']['name']}` {result['attack']['params']} at eps = {result['eps']:g} "
        f"({result['eps_255']}/255, L-inf), {result['seeding']}; {result['subset']}.",
        "",
        f"Definition: {result['definition']}.",
        "",
        "Rows: surrogate (crafted on). Columns: target (shown to). Cell: fooled share, n, Wilson 95% interval; "
        "**bold** = white-box (diagonal).",
        "",
        "| surrogate \\ target | " + " | ".join(result["targets"]) + " |",
        "|---|" + "---|" * len(result["targets"]),
    ]
    for s in result["surrogates"]:
        row = []
        for t in result["targets"]:
            c = cells[(s, t)]
            text = f"{100 * c['rate']:.1f}% (n={c['n']}, {100 * c['wilson95'][0]:.1f}-{100 * c['wilson95'][1]:.1f})"
            row.append(f"**{text}**" if c["white_box"] else text)
        lines.append(f"| {s} | " + " | ".join(row) + " |")
    lines += [
        "",
        f"Wall time {result['wall_time_s']:.0f} s on {result['device']} ({result['threads']} threads, "
        f"{result['machine']}), torch {result['torch_version']}.",
        "",
    ]
    return "\n".join(lines)


def write_transfer_matrix(result: dict[str, Any], models_dir: Path | None = None) -> tuple[Path, Path]:
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    json_path, md_path = matrix_paths(models_dir)
    cards.atomic_write_bytes(json_path, (json.dumps(result, indent=2) + "\n").encode("utf-8"))
    cards.atomic_write_bytes(md_path, render_matrix_markdown(result).encode("utf-8"))
    return json_path, md_path
