"""NES gradient estimation (Ilyas, Engstrom, Athalye & Lin 2018, "Black-box Adversarial Attacks with Limited
Queries and Information"), L∞.

Score-based: each iteration asks for the probabilities of the current image and of ``samples`` antithetic
Gaussian probes x ± sigma*u (all within the eps-ball and bounds), estimates the gradient of the margin loss
(true-class log-probability minus the best other) from them, and takes a signed PGD step against it. A sample
stops as soon as any image it was queried on is adversarial, and is never queried past its budget.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import AttackParams
from app.ml.attacks.common import fooled, judge_candidates, randn
from app.ml.attacks.inputs import AttackBatch
from app.ml.attacks.queries import Progress, QueryAttack, QueryCounter


class NESParams(AttackParams):
    max_queries: int = Field(1000, ge=1, le=100_000, description="Per-sample query budget.")
    samples: int = Field(20, ge=2, le=1_000, description="Probes per gradient estimate (even: antithetic pairs).")
    sigma: float = Field(0.01, gt=0.0, le=1.0, description="Probe radius in pixel units.")
    step_size: float | None = Field(None, gt=0.0, le=1.0, description="Absolute L∞ step; None means eps/5.")


class NES(QueryAttack, name="nes", params=NESParams, threat_model="score", targeted=True):
    def attack(self, oracle: QueryCounter, batch: AttackBatch) -> Tensor:
        p = self.params
        images, low, high = batch.images, batch.low, batch.high
        half = max(p.samples // 2, 1)
        per_iter = 1 + 2 * half
        dev = images.device
        step = batch.eps / 5 if p.step_size is None else torch.full_like(batch.eps, p.step_size)
        progress = Progress.start(images)
        adv, done = progress.adversarial, progress.done
        while True:
            active = oracle.affordable(~done)
            if active.numel() == 0:
                break
            y, t = batch.labels[active], batch.target_of(active)
            x = adv[active]
            probs = oracle.probabilities(x, active)
            is_adv = fooled(probs.argmax(1), y, t)
            done[active[is_adv]] = True
            keep = ~is_adv & (oracle.remaining(active).to(dev) >= per_iter - 1)
            done[active[~is_adv & ~keep]] = True  # not enough budget left for another estimate
            active, x, y = active[keep], x[keep], y[keep]
            t = None if t is None else t[keep]
            if active.numel() == 0:
                continue
            n = active.numel()
            u = randn(batch.generator, active, (half, *images.shape[1:]), dev)
            lo_a, hi_a = low[active].unsqueeze(1), high[active].unsqueeze(1)
            probes = torch.cat([x.unsqueeze(1) + p.sigma * u, x.unsqueeze(1) - p.sigma * u], dim=1)
            probes = torch.minimum(torch.maximum(probes, lo_a), hi_a)
            losses, hits = judge_candidates(oracle.probabilities(probes, active), y, t)  # (n, 2*half) each
            moving = ~progress.take_first_hits(active, probes, hits)
            diff = (losses[:, :half] - losses[:, half:]).view(n, half, 1, 1, 1)
            grad = (diff * u).sum(1)
            rows = active[moving]
            stepped = x[moving] - step[rows] * grad[moving].sign()
            adv[rows] = torch.minimum(torch.maximum(stepped, low[rows]), high[rows])
        return adv
