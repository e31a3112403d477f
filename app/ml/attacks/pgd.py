"""PGD-L∞ (Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks").

Start at a uniform random point of the eps-ball (optional), then repeat ``steps`` times: take a signed
gradient step of the loss and project back onto the eps-ball intersected with the pixel bounds. Targeted mode
(``target=`` labels) descends the cross-entropy of the target class instead.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import Attack, AttackParams, GeneratorArg, uniform_noise
from app.ml.model import ArenaModel

# Madry et al. use a step of 2.5 * eps / steps: large enough to cross the ball and come back within the run.
REL_STEP_SIZE = 2.5


class PGDParams(AttackParams):
    steps: int = Field(20, ge=1, le=10_000, description="Gradient steps (model forward+backward passes).")
    step_size: float | None = Field(
        None, gt=0.0, le=1.0, description=f"Absolute step in pixel units; None means {REL_STEP_SIZE}*eps/steps."
    )
    random_start: bool = Field(True, description="Start from a uniform random point of the eps-ball.")


class PGD(Attack):
    name: ClassVar[str] = "pgd"
    Params: ClassVar[type[AttackParams]] = PGDParams
    params: PGDParams
    supports_target: ClassVar[bool] = True
    explanation: ClassVar[str] = (
        "Projected gradient descent repeats the gradient-sign step many times with small steps, starting from "
        "a random point near the image, and after every step pulls the image back so that no pixel has moved "
        "more than the budget. Each step uses the network's exact gradient, so it finds an adversarial image "
        "within the budget whenever one is easy to reach; it is the standard yardstick for robustness."
    )

    def run(
        self,
        model: ArenaModel,
        images: Tensor,
        labels: Tensor,
        eps: Tensor,
        low: Tensor,
        high: Tensor,
        generator: GeneratorArg,
        target: Tensor | None = None,
    ) -> Tensor:
        steps = self.params.steps
        goal = labels if target is None else target
        step = eps * (REL_STEP_SIZE / steps) if self.params.step_size is None else self.params.step_size
        if self.params.random_start:
            adv = torch.clamp(images + eps * uniform_noise(images, generator), low, high)
        else:
            adv = images.clone()
        # The loop body is the whole per-step overhead beyond the model's forward+backward, so it only does
        # in-place work on the one (B,C,H,W) buffer: sign, step, and a single clamp to the precomputed box.
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), goal, reduction="sum")
            if target is not None:
                loss = -loss
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach()
            if isinstance(step, Tensor):
                adv.addcmul_(grad.sign_(), step)
            else:
                adv.add_(grad.sign_(), alpha=step)
            adv.clamp_(low, high)
        return adv
