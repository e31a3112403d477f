"""The image a round shows under its science condition (app/game/conditions.py), made on the model worker: the
attack's output, the clean image, random noise of the attack's norm and budget, or the attack's change flipped."""

from __future__ import annotations

from typing import Any

import torch

from app.ml.attacks.base import project_l2, uniform_noise
from app.ml.model import ArenaModel


def shown_candidate(
    condition: str,
    attack: Any,
    model: ArenaModel,
    clean: torch.Tensor,
    labels: torch.Tensor,
    eps: torch.Tensor,
    generators: list[torch.Generator],
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The float image a round shows under its condition (app/game/conditions.py), the attack's queries and its
    gradient steps (None where it counts none). Every random draw comes from the job's own seeded generator, so a
    stored round regenerates exactly."""
    if condition == "clean":
        return clean, None, None
    if condition == "noise":  # random change with the attack's norm and budget, not aimed at anything
        draw = uniform_noise(clean, generators)
        radius = eps.view(-1, *([1] * (clean.ndim - 1)))
        if attack.norm == "l2":
            # Pixels pinned at black or white lose their share to clipping: grow the rest until the change is
            # as large as the budget allows, as an attack's would be.
            candidate = clean
            delta = draw
            for _ in range(6):
                scale = radius / delta.flatten(1).norm(dim=1).clamp_min(1e-12).view_as(radius)
                candidate = (clean + delta * scale).clamp(*model.bounds)
                delta = candidate - clean
            return project_l2(candidate, clean, radius, model.bounds), None, None
        if attack.norm == "l0":  # as many random pixels as the attack may change, set to random values
            pixels = int(getattr(attack.params, "pixels", 1))
            noisy = clean.clone()
            for row, generator in enumerate(generators):
                flat = noisy[row].view(-1)
                where = torch.randperm(flat.numel(), generator=generator, device=generator.device)[:pixels]
                values = torch.rand(pixels, generator=generator, device=generator.device)
                flat[where.to(flat.device)] = values.to(flat.device)
            return noisy, None, None
        return (clean + torch.sign(draw) * radius).clamp(*model.bounds), None, None
    result = attack(model, clean, labels, eps, generator=generators)
    if condition == "flipped":  # Elsayed et al.'s control: the same change, pointing the other way
        return (2 * clean - result.adversarial).clamp(*model.bounds), result.queries, result.steps
    return result.adversarial, result.queries, result.steps
