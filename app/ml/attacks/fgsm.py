"""FGSM (Goodfellow, Shlens & Szegedy 2015, "Explaining and Harnessing Adversarial Examples").

One signed-gradient step of size eps: x_adv = clip(x + eps * sign(grad_x loss(x, y))). Targeted: step down the
loss of the target class instead, x_adv = clip(x - eps * sign(grad_x loss(x, t))).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from app.ml.attacks.base import Attack, AttackParams
from app.ml.attacks.inputs import AttackBatch
from app.ml.model import ArenaModel


class FGSMParams(AttackParams):
    """FGSM has no hyperparameters besides the budget, which is given per call."""


class FGSM(Attack, name="fgsm", params=FGSMParams, targeted=True):
    def run(self, model: ArenaModel, batch: AttackBatch) -> Tensor:
        x = batch.images.clone().requires_grad_(True)
        loss = F.cross_entropy(model(x), batch.goal, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
        direction = grad.sign() if batch.target is None else -grad.sign()
        return torch.clamp(batch.images + batch.eps * direction, batch.low, batch.high)
