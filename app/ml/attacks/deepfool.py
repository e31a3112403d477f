"""DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016), L2 and L∞ variants, batched with an active set.

At each step the classifier is linearised around the current image: for every candidate class k the logit
difference f_k = z_k - z_y and its gradient w_k give the distance |f_k| / ||w_k||_q to the k-vs-y boundary
(q is the dual norm: 2 for L2, 1 for L∞); the attack steps to the nearest boundary and overshoots a little.
Samples leave the batch once fooled. DeepFool minimises the perturbation rather than respecting a budget, so
the result is clipped to the eps-ball afterwards and success re-measured there (Foolbox's convention): pass a
large eps (e.g. ``math.sqrt(784)`` for L2, 1.0 for L∞) to see the minimal perturbation unclipped.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import Attack, AttackParams
from app.ml.attacks.common import forward_bucketed
from app.ml.attacks.inputs import AttackBatch
from app.ml.model import ArenaModel


class DeepFoolParams(AttackParams):
    steps: int = Field(50, ge=1, le=1_000, description="Maximum linearisation steps per image.")
    overshoot: float = Field(0.02, ge=0.0, le=1.0, description="Relative overshoot past the linearised boundary.")
    candidates: int = Field(10, ge=2, le=1_000, description="Classes considered: the top-k of the clean logits.")


class DeepFool(Attack, name="deepfool", params=DeepFoolParams, norm="l2"):
    dual_order: ClassVar[float] = 2.0

    def run(self, model: ArenaModel, batch: AttackBatch) -> Tensor:
        images, labels = batch.images, batch.labels
        lo, hi = model.bounds
        with torch.no_grad():
            logits = model(images)
        k = min(self.params.candidates, logits.shape[1])
        # Candidates: the true class first, then the k-1 highest-scoring other classes.
        others = logits.scatter(1, labels.unsqueeze(1), float("-inf")).topk(k - 1, dim=1).indices
        classes = torch.cat([labels.unsqueeze(1), others], dim=1)
        total = torch.zeros_like(images)
        adv = images.clone()
        active = torch.nonzero(logits.argmax(1) == labels).squeeze(1)
        for _ in range(self.params.steps):
            if active.numel() == 0:
                break
            xa = adv[active].requires_grad_(True)
            za = forward_bucketed(model, xa)
            cls = classes[active]
            still = za.argmax(1) == cls[:, 0]
            if not bool(still.all()):
                keep = torch.nonzero(still).squeeze(1)
                active, cls = active[keep], cls[keep]
                if active.numel() == 0:
                    break
                xa = adv[active].requires_grad_(True)
                za = forward_bucketed(model, xa)
            picked = za.gather(1, cls)
            diffs = picked[:, 1:] - picked[:, :1]  # (n, k-1), negative while the true class wins
            grads = []
            for j in range(k - 1):
                (g,) = torch.autograd.grad(diffs[:, j].sum(), xa, retain_graph=j < k - 2)
                grads.append(g)
            w = torch.stack(grads, dim=1)  # (n, k-1, C,H,W)
            f = diffs.detach().abs()
            w_norm = w.flatten(2).norm(p=self.dual_order, dim=2).clamp_min(1e-12)
            dist = f / w_norm
            best = dist.argmin(1)
            rows = torch.arange(active.numel())
            f_best, w_best, n_best = f[rows, best], w[rows, best], w_norm[rows, best]
            shape = (-1, 1, 1, 1)
            if self.dual_order == 2.0:
                step = ((f_best + 1e-4) / n_best**2).view(shape) * w_best
            else:
                step = ((f_best + 1e-4) / n_best).view(shape) * w_best.sign()
            total[active] += step
            adv[active] = (images[active] + (1.0 + self.params.overshoot) * total[active]).clamp(lo, hi)
        return adv


class DeepFoolLinf(DeepFool, name="deepfool-linf", norm="linf"):
    dual_order: ClassVar[float] = 1.0
