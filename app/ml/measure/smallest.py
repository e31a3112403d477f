"""The machine's smallest successful attack on one image, to set beside a person's hand-painted one (issue #21).

* l0: the registry's one-pixel attack (differential evolution, ``L0_QUERIES`` queries, stopping at the first
  success) with 1, 2, 4, ... 128 pixels, each pixel free to take any value (eps 1.0); the first pixel count that
  fools the opponent wins (no refinement between two counts: each failed count costs about a second on one core).
  The count reported is the pixels that actually differ on the rounded image.
* l2: DeepFool (the nearest linearised boundary, a small overshoot); its rounded image is checked and, when
  rounding undid it, the overshoot grows. CW L2 is the fallback when DeepFool does not fool at all.
* linf: PGD-20 (seeded random start) at a budget of whole grey levels, binary search over 1..``MAX_LINF_LEVELS``:
  the smallest budget at which it fools.

Success is always the opponent's answer on the rounded uint8 image (what a person would be shown), never the
attack's word. Runs on the model worker thread; seeded per job, so the same job gives the same image.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from app.ml.attacks import get_attack
from app.ml.model import ArenaModel
from app.ml.service.classify_contracts import SmallestJob, SmallestResult
from app.ml.service.tensors import quantize_within_budget, to_tensor

L0_PIXEL_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)
L0_QUERIES = 500
MAX_LINF_LEVELS = 128
PGD_STEPS = 20
DEEPFOOL_OVERSHOOTS = (0.02, 0.1, 0.3)


def answer(model: ArenaModel, pixels: np.ndarray, device: torch.device) -> int:
    with torch.inference_mode():
        return int(model(to_tensor(pixels[None], device)).argmax(1).item())


def measured(
    job: SmallestJob, attack: str, clean: np.ndarray, shown: np.ndarray, label: int, fooled: bool
) -> SmallestResult:
    change = shown.astype(np.float64) - clean.astype(np.float64)
    changed = np.abs(change) > 0
    pixels = int(changed.any(axis=-1).sum()) if changed.ndim == 3 else int(changed.sum())
    return SmallestResult(
        opponent=job.opponent,
        image_index=job.image_index,
        norm=job.norm,
        attack=attack,
        found=fooled,
        pixels=pixels if fooled else 0,
        l2=float(np.sqrt(((change / 255.0) ** 2).sum())),
        linf=float(np.abs(change).max() / 255.0),
        label=label,
        adversarial=shown if fooled else clean,
    )


def smallest_l0(
    model: ArenaModel, clean: np.ndarray, truth: int, job: SmallestJob, device: torch.device
) -> SmallestResult:
    x = to_tensor(clean[None], device)
    y = torch.tensor([truth], device=device)
    for pixels in L0_PIXEL_STEPS:
        attack = get_attack("one-pixel", pixels=pixels, max_queries=L0_QUERIES)
        generator = torch.Generator(device=device).manual_seed(job.seed + pixels)
        result = attack(model, x, y, 1.0, generator=generator)
        shown = quantize_within_budget(clean[None], result.adversarial, np.array([1.0]), "l0")[0]
        label = answer(model, shown, device)
        if label != truth:
            return measured(job, "one-pixel", clean, shown, label, True)
    return measured(job, "one-pixel", clean, clean, truth, False)


def smallest_l2(
    model: ArenaModel, clean: np.ndarray, truth: int, job: SmallestJob, device: torch.device
) -> SmallestResult:
    x = to_tensor(clean[None], device)
    y = torch.tensor([truth], device=device)
    radius = float(np.sqrt(clean.size))  # the whole image: DeepFool and CW look for the smallest change themselves
    for overshoot in DEEPFOOL_OVERSHOOTS:
        result = get_attack("deepfool", overshoot=overshoot)(model, x, y, radius)
        shown = quantize_within_budget(clean[None], result.adversarial, np.array([radius]), "l2")[0]
        label = answer(model, shown, device)
        if label != truth:
            return measured(job, "deepfool", clean, shown, label, True)
    generator = torch.Generator(device=device).manual_seed(job.seed)
    result = get_attack("cw")(model, x, y, radius, generator=generator)
    shown = quantize_within_budget(clean[None], result.adversarial, np.array([radius]), "l2")[0]
    label = answer(model, shown, device)
    return measured(job, "cw", clean, shown, label, label != truth)


def smallest_linf(
    model: ArenaModel, clean: np.ndarray, truth: int, job: SmallestJob, device: torch.device
) -> SmallestResult:
    x = to_tensor(clean[None], device)
    y = torch.tensor([truth], device=device)
    attack = get_attack("pgd", steps=PGD_STEPS)

    def fools(levels: int) -> tuple[np.ndarray, int] | None:
        eps = levels / 255.0
        generator = torch.Generator(device=device).manual_seed(job.seed)
        result = attack(model, x, y, eps, generator=generator)
        shown = quantize_within_budget(clean[None], result.adversarial, np.array([eps]), "linf")[0]
        label = answer(model, shown, device)
        return (shown, label) if label != truth else None

    best = fools(MAX_LINF_LEVELS)
    if best is None:
        return measured(job, "pgd", clean, clean, truth, False)
    low, high = 0, MAX_LINF_LEVELS  # fools at high, not known to fool at low
    while high - low > 1:
        middle = (low + high) // 2
        found = fools(middle)
        if found is None:
            low = middle
        else:
            high, best = middle, found
    return measured(job, "pgd", clean, best[0], best[1], True)


SEARCHES = {"l0": smallest_l0, "l2": smallest_l2, "linf": smallest_linf}


def smallest_attack(
    model: ArenaModel, clean: np.ndarray, truth: int, job: SmallestJob, device: torch.device
) -> SmallestResult:
    """The smallest successful attack of ``job.norm`` on ``clean`` (uint8, true label ``truth``); see the module."""
    job.validate()
    started = time.perf_counter()
    result = SEARCHES[job.norm](model, clean, truth, job, device)
    elapsed = (time.perf_counter() - started) * 1000.0
    return dataclasses.replace(result, elapsed_ms=elapsed)
