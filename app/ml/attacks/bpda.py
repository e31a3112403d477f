"""BPDA-PGD: PGD-L∞ through the Backward Pass Differentiable Approximation (Athalye, Carlini & Wagner 2018,
"Obfuscated Gradients Give a False Sense of Security").

An input-transform defense (bit-depth reduction, JPEG, a reformer) often has a zero or useless gradient, so a
plain gradient attack "fails" against it without the defense being robust. BPDA runs the real transform on the
forward pass and replaces its backward pass by the identity (the transform is close to the identity on images),
which restores a useful gradient. Against a defense with a detector, ``detector_weight`` > 0 also descends the
detector's score, so the image is pushed to fool the classifier *and* pass the detector (the adaptive attack of
Carlini & Wagner 2017, "Adversarial Examples Are Not Easily Detected"). On an undefended model, with the default
cross-entropy loss, it is plain PGD; ``loss="margin"`` makes it the adaptive attack on defensive distillation,
whose saturated softmax zeroes the cross-entropy gradient.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import Attack, AttackParams
from app.ml.attacks.common import PGDStepSize, RandomStart, margin, pgd_step_size, uniform_start
from app.ml.attacks.inputs import AttackBatch
from app.ml.defenses.base import InputDefense, attack_view
from app.ml.model import ArenaModel


class BPDAParams(AttackParams):
    steps: int = Field(20, ge=1, le=10_000, description="Gradient steps.")
    step_size: PGDStepSize = None
    random_start: RandomStart = True
    loss: Literal["ce", "margin"] = Field(
        "ce",
        description=(
            "ce: cross-entropy; margin: the logit margin of Carlini & Wagner, which keeps its gradient when the "
            "softmax saturates (defensive distillation)."
        ),
    )
    detector_weight: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="Weight of the defense's detector score in the loss (0: ignore the detector).",
    )


class BPDAPGD(Attack, name="bpda-pgd", params=BPDAParams, targeted=True):
    def gradient_view(self, model: ArenaModel) -> ArenaModel:
        """What the attack differentiates: BPDA through an input defense, else the model itself."""
        return attack_view(model)

    def run(self, model: ArenaModel, batch: AttackBatch) -> Tensor:
        p = self.params
        labels, target = batch.labels, batch.target
        view = self.gradient_view(model)
        weight = p.detector_weight if isinstance(view, InputDefense) else 0.0
        step = pgd_step_size(batch.eps, p.steps, p.step_size)
        adv = (uniform_start(batch) if p.random_start else batch.images).clone()
        for _ in range(p.steps):
            adv.requires_grad_(True)
            logits = view(adv)
            if p.loss == "margin":
                # margin() is > 0 while not yet adversarial (untargeted and targeted alike): descend it.
                loss = -margin(logits, labels, target).sum()
            else:
                loss = F.cross_entropy(logits, batch.goal, reduction="sum")
                if target is not None:
                    loss = -loss
            if weight > 0:
                assert isinstance(view, InputDefense)
                loss = loss - weight * view.detection_score(adv).sum()
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach() + step * grad.sign()
            adv = torch.min(torch.max(adv, batch.low), batch.high)
        return adv


class UnrolledPGD(BPDAPGD, name="unrolled-pgd"):
    """PGD-L∞ differentiating *through* a defense's own iterative transform instead of around it: Defense-GAN's
    projection is ten Adam steps on a latent code, short enough to record and backpropagate through, which
    Athalye, Carlini & Wagner (2018) name as the way to attack an optimisation-based defense. BPDA's identity
    approximation is poor there (the projection moves clean images far: the generator reconstructs them only
    roughly), and measured on fashion-defgan it barely moves accuracy; this follows the real dependence. On a
    model without such a transform it is BPDA-PGD (and on an undefended model, plain PGD)."""

    def gradient_view(self, model: ArenaModel) -> ArenaModel:
        unrolled = getattr(model, "unrolled", None)
        return unrolled() if callable(unrolled) else attack_view(model)
