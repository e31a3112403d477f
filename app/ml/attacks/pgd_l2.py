"""PGD-L2 (Madry et al. 2018): projected gradient descent in an L2 ball, untargeted or targeted.

Start at a random point of the L2 eps-ball (optional), then repeat ``steps`` times: step along the gradient
normalised to unit L2 norm, scale the perturbation back into the ball and clip to the pixel bounds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import Attack, AttackParams
from app.ml.attacks.common import REL_STEP_SIZE, pgd_step_size, rand, randn
from app.ml.attacks.inputs import AttackBatch
from app.ml.model import ArenaModel


class PGDL2Params(AttackParams):
    steps: int = Field(20, ge=1, le=10_000, description="Gradient steps (model forward+backward passes).")
    step_size: float | None = Field(
        None, gt=0.0, le=28.0, description=f"Absolute L2 step; None means {REL_STEP_SIZE}*eps/steps."
    )
    random_start: bool = Field(True, description="Start from a uniform random point of the L2 eps-ball.")


def _renorm(delta: Tensor, eps: Tensor, low: float, high: float, x: Tensor) -> Tensor:
    norms = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    delta = delta * torch.clamp(eps / norms.clamp_min(1e-12), max=1.0)
    return (x + delta).clamp_(low, high)


class PGDL2(Attack, name="pgd-l2", params=PGDL2Params, norm="l2", targeted=True):
    def run(self, model: ArenaModel, batch: AttackBatch) -> Tensor:
        images, eps, generator = batch.images, batch.eps, batch.generator
        lo, hi = model.bounds
        steps = self.params.steps
        step = pgd_step_size(eps, steps, self.params.step_size)
        sign = 1.0 if batch.target is None else -1.0
        if self.params.random_start:
            idx = torch.arange(images.shape[0])
            direction = randn(generator, idx, images.shape[1:], images.device)
            direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            radius = rand(generator, idx, (1, 1, 1), images.device) * eps
            adv = _renorm(direction * radius, eps, lo, hi, images)
        else:
            adv = images.clone()
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = sign * F.cross_entropy(model(adv), batch.goal, reduction="sum")
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach()
            grad_norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            adv = _renorm(adv + step * grad / grad_norm - images, eps, lo, hi, images)
        return adv
