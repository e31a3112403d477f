"""NES gradient estimation (Ilyas, Engstrom, Athalye & Lin 2018, "Black-box Adversarial Attacks with Limited
Queries and Information"), L∞.

Score-based: each iteration asks for the probabilities of the current image and of ``samples`` antithetic
Gaussian probes x ± sigma*u (all within the eps-ball and bounds), estimates the gradient of the margin loss
(true-class log-probability minus the best other) from them, and takes a signed PGD step against it. A sample
stops as soon as any image it was queried on is adversarial, and is never queried past its budget.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import AttackParams, GeneratorArg
from app.ml.attacks.common import fooled, margin, randn
from app.ml.attacks.queries import QueryAttack, QueryCounter


class NESParams(AttackParams):
    max_queries: int = Field(1000, ge=1, le=100_000, description="Per-sample query budget.")
    samples: int = Field(20, ge=2, le=1_000, description="Probes per gradient estimate (even: antithetic pairs).")
    sigma: float = Field(0.01, gt=0.0, le=1.0, description="Probe radius in pixel units.")
    step_size: float | None = Field(None, gt=0.0, le=1.0, description="Absolute L∞ step; None means eps/5.")


class NES(QueryAttack):
    name: ClassVar[str] = "nes"
    Params: ClassVar[type[AttackParams]] = NESParams
    params: NESParams
    threat_model = "score"
    supports_target: ClassVar[bool] = True
    explanation: ClassVar[str] = (
        "Natural evolution strategies guess the gradient without seeing it: the attacker shows the network "
        "the image with a few dozen tiny random speckle patterns added and subtracted, watches how its "
        "confidence moves, and averages the patterns weighted by that change. That estimate points roughly "
        "where the real gradient would, so the attacker can then take the same small steps PGD takes."
    )

    def attack(
        self,
        oracle: QueryCounter,
        images: Tensor,
        labels: Tensor,
        eps: Tensor,
        low: Tensor,
        high: Tensor,
        generator: GeneratorArg,
        target: Tensor | None,
    ) -> Tensor:
        p = self.params
        half = max(p.samples // 2, 1)
        per_iter = 1 + 2 * half
        dev = images.device
        step = eps / 5 if p.step_size is None else torch.full_like(eps, p.step_size)
        adv = images.clone()
        done = torch.zeros(images.shape[0], dtype=torch.bool, device=dev)
        while True:
            active = torch.nonzero(~done & (oracle.remaining().to(dev) >= 1)).squeeze(1)
            if active.numel() == 0:
                break
            y = labels[active]
            t = None if target is None else target[active]
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
            u = randn(generator, active, (half, *images.shape[1:]), dev)
            lo_a, hi_a = low[active].unsqueeze(1), high[active].unsqueeze(1)
            probes = torch.cat([x.unsqueeze(1) + p.sigma * u, x.unsqueeze(1) - p.sigma * u], dim=1)
            probes = torch.minimum(torch.maximum(probes, lo_a), hi_a)
            probe_probs = oracle.probabilities(probes, active)  # (n, 2*half, K)
            flat = probe_probs.flatten(0, 1)
            rep = lambda v: v.repeat_interleave(2 * half)  # noqa: E731
            losses = margin(flat.clamp_min(1e-30).log(), rep(y), None if t is None else rep(t)).view(n, 2 * half)
            hits = fooled(flat.argmax(1), rep(y), None if t is None else rep(t)).view(n, 2 * half)
            if bool(hits.any()):
                first = hits.float().argmax(1)
                found = hits.any(1)
                adv[active[found]] = probes[found, first[found]]
                done[active[found]] = True
            diff = (losses[:, :half] - losses[:, half:]).view(n, half, 1, 1, 1)
            grad = (diff * u).sum(1)
            moving = ~hits.any(1)
            rows = active[moving]
            stepped = x[moving] - step[rows] * grad[moving].sign()
            adv[rows] = torch.minimum(torch.maximum(stepped, low[rows]), high[rows])
        return adv
