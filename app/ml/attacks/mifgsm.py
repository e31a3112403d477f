"""MI-FGSM (Dong et al. 2018, "Boosting Adversarial Attacks with Momentum").

Iterated FGSM whose step direction is the sign of an accumulated momentum of L1-normalised gradients,
g <- decay * g + grad / ||grad||_1, with step eps/steps and projection onto the L∞ eps-ball. The momentum
stabilises the direction, which is what makes its examples transfer better to other models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import Attack, AttackParams
from app.ml.attacks.inputs import AttackBatch
from app.ml.model import ArenaModel


class MIFGSMParams(AttackParams):
    steps: int = Field(10, ge=1, le=10_000, description="Gradient steps; the step size is eps/steps.")
    decay: float = Field(1.0, ge=0.0, le=10.0, description="Momentum decay factor mu (0 gives plain I-FGSM).")


class MIFGSM(Attack, name="mi-fgsm", params=MIFGSMParams, targeted=True):
    def run(self, model: ArenaModel, batch: AttackBatch) -> Tensor:
        alpha = batch.eps / self.params.steps
        sign = 1.0 if batch.target is None else -1.0
        momentum = torch.zeros_like(batch.images)
        adv = batch.images.clone()
        for _ in range(self.params.steps):
            adv.requires_grad_(True)
            loss = sign * F.cross_entropy(model(adv), batch.goal, reduction="sum")
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach()
            grad = grad / grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
            momentum = self.params.decay * momentum + grad
            adv = torch.clamp(adv + alpha * momentum.sign(), batch.low, batch.high)
        return adv
