"""How an AdvGAN generator compares with PGD-10: success at each eps on the same images, and speed per image.

What ``arena train-advgan`` writes into the generator's card (app/ml/training/advgan.py).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import Tensor

from app.ml.attacks import get_attack
from app.ml.attacks.advgan import AdvGAN
from app.ml.measure.evaluation import per_image_generators, progress_bar
from app.ml.measure.machine import cpu_summary
from app.ml.model import ArenaModel

EVAL_EPS: tuple[float, ...] = (0.05, 0.1, 0.2)
PGD_PARAMS: dict[str, Any] = {"steps": 10}


def _predictions(model: ArenaModel, images: Tensor, batch: int) -> Tensor:
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
    clean_ok = _predictions(model, images, batch) == labels
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
                still_right = _predictions(model, torch.cat(advs), batch) == labels
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
        "machine": cpu_summary(),
    }
