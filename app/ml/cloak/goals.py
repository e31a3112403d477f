"""What a cloak tries to do to the classifier, and the score its gradient steps increase.

- ``family`` (the default): leave the whole family of the clean answer, the smallest WordNet hypernym that holds
  the clean top-5 (app/ml/cloak/wordnet.py). PGD's score is ``-log p(family)``, the cross-entropy of the family
  as one class; the CW score is the best logit outside the family minus the best inside it. Met when the top-1
  is outside the family.
- ``untargeted``: leave the source label (the model's own answer, or a known true class); met when the top-1
  differs from it.
- ``targeted``: reach the target class; met when the top-1 is the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from app.ml.cloak.wordnet import Family

GoalKind = Literal["family", "untargeted", "targeted"]
GOALS: tuple[GoalKind, ...] = ("family", "untargeted", "targeted")
Method = Literal["pgd", "cw"]
MET_WEIGHT = 0.25  # weight of a search objective already met with margin (and of a classifier goal already met)
MARGIN = 1.5  # "with margin": past 1.5 x the embedding threshold, or 4 bits past the pHash threshold


@dataclass(frozen=True)
class Goal:
    kind: GoalKind
    source: int
    target: int | None = None
    family: Family | None = None

    def met(self, probs: np.ndarray) -> bool:
        top = int(np.argmax(probs))
        if self.kind == "targeted":
            return top == self.target
        if self.kind == "family" and self.family is not None:
            return top not in self.family.members
        return top != self.source

    def mask(self, num_classes: int, device: torch.device) -> Tensor:
        inside = torch.zeros(num_classes, dtype=torch.bool, device=device)
        if self.kind == "family" and self.family is not None:
            inside[list(self.family.members)] = True
        else:
            inside[self.target if self.kind == "targeted" and self.target is not None else self.source] = True
        return inside

    def score(self, logits: Tensor, inside: Tensor, method: Method) -> Tensor:
        """Per view; the attack increases it."""
        if self.kind == "family":
            family = logits.masked_fill(~inside, -math.inf)
            others = logits.masked_fill(inside, -math.inf)
            if method == "pgd":
                return torch.logsumexp(logits, -1) - torch.logsumexp(family, -1)
            return others.amax(-1) - family.amax(-1)
        goal_class = int(self.target if self.kind == "targeted" and self.target is not None else self.source)
        goal = torch.full((logits.shape[0],), goal_class, device=logits.device, dtype=torch.long)
        if method == "pgd":
            ce = F.cross_entropy(logits, goal, reduction="none")
            return -ce if self.kind == "targeted" else ce
        goal_logit = logits[:, goal_class]
        others = logits.masked_fill(inside, -math.inf).amax(-1)
        return goal_logit - others if self.kind == "targeted" else others - goal_logit


def step_direction(
    aim: Goal,
    logits: Tensor,
    score: Tensor,
    distance: Tensor,
    hash_loss: Tensor | None,
    adv: Tensor,
    thresholds: dict[str, Any],
    pull: Tensor | None = None,
    hash_met: bool = False,
) -> Tensor:
    """The gradient the sign step follows: the classifier's goal plus, with search on, the embedding's
    distance (same backward pass; minus the distance to a decoy photo when ``pull`` is given) and minus the pHash
    hinge toward its decoy (app/ml/cloak/hash_attack.py), each scaled to the same mean size."""
    met = aim.met(logits[0].detach().cpu().numpy())
    objective = score.mean() * (MET_WEIGHT if met else 1.0)
    if hash_loss is None:
        (grad,) = torch.autograd.grad(objective, adv)
        return grad
    limit = float(thresholds["embedding"])
    far = float(distance[0].detach()) > MARGIN * limit
    away = distance - pull if pull is not None else distance  # away from the original, toward the decoy
    objective = objective + away.mean() / limit * (MET_WEIGHT if far else 1.0)
    (grad_net,) = torch.autograd.grad(objective, adv)
    if float(hash_loss.detach()) == 0.0:  # every bit already past the hinge's margin: no gradient to scale
        return grad_net
    (grad_hash,) = torch.autograd.grad(-hash_loss, adv)
    # the classifier's goal comes first: until it is met, the hash (which a few grey levels rarely beat) must not
    # take over the sign of most pixels, as its smooth gradient would at equal mean size
    weight = MET_WEIGHT if hash_met or not met else 1.0
    scale_net = grad_net.abs().mean().clamp_min(1e-12)
    scale_hash = grad_hash.abs().mean().clamp_min(1e-12)
    return grad_net / scale_net + weight * grad_hash / scale_hash
