"""Early stopping on the image as shown (issue 15): PGD whose every step is judged on the image a player will see.

The model service rounds an attack's float image to whole grey levels within the budget before anyone sees it
(app/ml/service/tensors.quantize_within_budget), so an image that fools the model in floating point may not fool it
once rounded, and one that does not may. Here each step rounds the iterate the same way, runs the model on that
shown image (the forward whose prediction says whether it fools, and whose gradient, straight through the rounding,
moves the float iterate), and freezes every image whose shown version fools: it leaves the batch, later steps
compute the images still unfooled only, and the shown version is what comes back. The steps each image took are
returned with it, so a round can store how long its attack ran.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from app.ml.attacks.base import RunOutput
from app.ml.attacks.common import fooled
from app.ml.attacks.inputs import AttackBatch
from app.ml.model import ArenaModel

LEVELS = 255.0  # grey levels of an 8-bit image: what a PNG holds


def shown_box(batch: AttackBatch) -> tuple[Tensor, Tensor]:
    """Per pixel, the lowest and highest shown value within the budget: the clean grey level ± floor(eps·255),
    within [0, 1], as the model service clips the rounded image."""
    levels = torch.round(batch.images * LEVELS)
    budget = torch.floor(batch.eps * LEVELS + 1e-6)
    return (levels - budget).clamp_(min=0) / LEVELS, (levels + budget).clamp_(max=LEVELS) / LEVELS


def as_shown(adv: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """The float image rounded to whole grey levels and clipped to the shown box."""
    return torch.minimum(torch.maximum(torch.round(adv * LEVELS) / LEVELS, low), high)


def run_stop_on_shown(
    model: ArenaModel, batch: AttackBatch, adv: Tensor, step: Tensor | float, steps: int
) -> RunOutput:
    """Up to ``steps`` signed-gradient steps from ``adv``; each image stops at the first step whose shown image
    fools the model (untargeted: any wrong class; targeted: the target). ``RunOutput.steps`` counts the gradient
    steps each image took before its shown image fooled (0: the start already did), ``steps`` for the rest (their
    last iterate is returned unjudged: the caller measures every returned image anyway)."""
    targeted = batch.target is not None
    shown_low, shown_high = shown_box(batch)
    result = adv.clone()
    steps_run = torch.full((adv.shape[0],), steps, dtype=torch.int64, device=adv.device)
    active = torch.arange(adv.shape[0], device=adv.device)
    labels = batch.goal
    for number in range(steps):
        shown = as_shown(adv.index_select(0, active), shown_low[active], shown_high[active]).requires_grad_(True)
        logits = model(shown)
        done = fooled(logits.detach().argmax(1), labels, labels if targeted else None)
        if bool(done.any()):
            finished = active[done]
            result.index_copy_(0, finished, shown.detach()[done])
            steps_run[finished] = number
        left = ~done
        if not bool(left.any()):
            active = active[left]
            break
        loss = F.cross_entropy(logits[left], labels[left], reduction="sum")
        if targeted:
            loss = -loss
        (grad,) = torch.autograd.grad(loss, shown)
        keep = active[left]
        moved = adv.index_select(0, keep)
        if isinstance(step, Tensor):
            moved.addcmul_(grad[left].sign_(), step.index_select(0, keep))
        else:
            moved.add_(grad[left].sign_(), alpha=step)
        moved = torch.minimum(torch.maximum(moved, batch.low.index_select(0, keep)), batch.high.index_select(0, keep))
        adv.index_copy_(0, keep, moved)
        active, labels = keep, labels[left]
    # Images still running after the last step: their last iterate, which the caller rounds (and judges) the same way.
    result.index_copy_(0, active, adv.index_select(0, active))
    return RunOutput(result, steps=steps_run)
