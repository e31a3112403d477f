"""Helpers shared by the attacks: per-sample random draws, PGD's step and start, margins and the adversarial
criterion.

Random draws take the attack's generator argument: one generator draws the whole (active) batch at once, a
list of generators draws each row from its sample's own generator, so that a sample's result depends only on its
own seed and not on which other samples share its batch or are still active.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import uniform_noise
from app.ml.attacks.inputs import AttackBatch, GeneratorArg

# Madry et al. use a step of 2.5 * eps / steps: large enough to cross the ball and come back within the run.
REL_STEP_SIZE = 2.5

# The hyperparameters PGD-L∞ and BPDA-PGD share, declared once so that their ranges and help text stay alike.
PGDStepSize = Annotated[
    float | None,
    Field(gt=0.0, le=1.0, description=f"Absolute step in pixel units; None means {REL_STEP_SIZE}*eps/steps."),
]
RandomStart = Annotated[bool, Field(description="Start from a uniform random point of the eps-ball.")]


def _draw(generator: GeneratorArg, idx: Tensor, shape: Sequence[int], device: torch.device, normal: bool) -> Tensor:
    fn = torch.randn if normal else torch.rand
    if generator is None:
        raise ValueError("random draws need a generator; the global RNG is never used")
    if isinstance(generator, torch.Generator):
        out = fn((len(idx), *shape), generator=generator, device=generator.device)
        return out.to(device)
    gens = list(generator)
    rows = [fn(tuple(shape), generator=gens[i], device=gens[i].device) for i in idx.tolist()]
    if not rows:
        return torch.empty((0, *shape), device=device)
    return torch.stack(rows).to(device)


def rand(generator: GeneratorArg, idx: Tensor, shape: Sequence[int], device: torch.device) -> Tensor:
    """U[0,1) draws shaped (len(idx), *shape): row i comes from sample ``idx[i]``'s generator when given a list."""
    return _draw(generator, idx, shape, device, normal=False)


def randn(generator: GeneratorArg, idx: Tensor, shape: Sequence[int], device: torch.device) -> Tensor:
    """N(0,1) draws shaped (len(idx), *shape), per sample like :func:`rand`."""
    return _draw(generator, idx, shape, device, normal=True)


def pgd_step_size(eps: Tensor, steps: int, absolute: float | None) -> Tensor | float:
    """A PGD-style attack's step: ``absolute`` when given, else :data:`REL_STEP_SIZE` * eps / steps per sample."""
    return eps * (REL_STEP_SIZE / steps) if absolute is None else absolute


def uniform_start(batch: AttackBatch) -> Tensor:
    """PGD's random start: a uniform random point of each sample's L∞ eps-ball, within the bounds."""
    return torch.clamp(batch.images + batch.eps * uniform_noise(batch.images, batch.generator), batch.low, batch.high)


def margin(scores: Tensor, labels: Tensor, target: Tensor | None) -> Tensor:
    """How far each sample is from being adversarial (> 0: not yet; <= 0: fooled, up to ties).

    Untargeted: score of the true class minus the best other class. Targeted: best non-target class minus the
    target's score. Works on logits, log-probabilities or probabilities alike. The class being compared is
    masked with -inf (not multiplied by a one-hot, which lets a 0 win when all other scores are negative).
    """
    cls = labels if target is None else target
    own = scores.gather(1, cls.unsqueeze(1)).squeeze(1)
    others = scores.scatter(1, cls.unsqueeze(1), float("-inf")).amax(1)
    return own - others if target is None else others - own


def fooled(predicted: Tensor, labels: Tensor, target: Tensor | None) -> Tensor:
    """The criterion the base class measures success with: misclassified, or classified as the target."""
    return predicted != labels if target is None else predicted == target


def judge_candidates(probs: Tensor, labels: Tensor, target: Tensor | None) -> tuple[Tensor, Tensor]:
    """Probabilities shaped (n, k, K), for k candidate images of each of n samples: each candidate's margin on the
    log-probabilities and whether it fools the model, both shaped (n, k)."""
    n, k = probs.shape[:2]
    flat = probs.flatten(0, 1)
    y = labels.repeat_interleave(k)
    t = None if target is None else target.repeat_interleave(k)
    return margin(flat.clamp_min(1e-30).log(), y, t).view(n, k), fooled(flat.argmax(1), y, t).view(n, k)


def bucket_size(n: int) -> int:
    """The batch size to run ``n`` rows at: the next power of two up to 64, then the next multiple of 64.

    Active sets shrink one sample at a time, and every new batch shape makes oneDNN build new conv kernels
    (hundreds of ms on a busy 2-core CPU, more than the forward pass itself); rounding shapes to a few buckets
    lets the kernels be reused, at the cost of at most 2x rows for small batches and < 64 rows for large ones.
    """
    if n <= 64:
        return 1 << max(n - 1, 0).bit_length()
    return -(-n // 64) * 64


def forward_bucketed(model: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``model(x)`` run at :func:`bucket_size` rows (padded with copies of the first row, which are dropped).

    Rows do not interact in an eval-mode classifier, so the padding changes nothing but the shape; under
    autograd the padded rows get no gradient because their outputs are dropped.
    """
    n = x.shape[0]
    size = bucket_size(n)
    if size == n:
        return model(x)
    pad = x[:1].expand(size - n, *x.shape[1:])
    return model(torch.cat([x, pad]))[:n]
