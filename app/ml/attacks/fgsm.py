"""FGSM (Goodfellow, Shlens & Szegedy 2015, "Explaining and Harnessing Adversarial Examples").

One signed-gradient step of size eps: x_adv = clip(x + eps * sign(grad_x loss(x, y))).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from app.ml.attacks.base import Attack, AttackParams, GeneratorArg
from app.ml.model import ArenaModel


class FGSMParams(AttackParams):
    """FGSM has no hyperparameters besides the budget, which is given per call."""


class FGSM(Attack):
    name: ClassVar[str] = "fgsm"
    Params: ClassVar[type[AttackParams]] = FGSMParams

    def run(
        self,
        model: ArenaModel,
        images: Tensor,
        labels: Tensor,
        eps: Tensor,
        low: Tensor,
        high: Tensor,
        generator: GeneratorArg,
    ) -> Tensor:
        x = images.clone().requires_grad_(True)
        loss = F.cross_entropy(model(x), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
        return torch.clamp(images + eps * grad.sign(), low, high)
