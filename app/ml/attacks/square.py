"""Square Attack, L∞ (Andriushchenko, Croce, Flammarion & Hein 2020, "Square Attack: a query-efficient
black-box adversarial attack via random search").

Score-based: it sees only the probabilities. Start from vertical stripes of ±eps; then, for every query, pick a
random square window (its side shrinks on the paper's schedule as queries are spent), set it to a random ±eps
per channel (flipped if that would leave the window unchanged) and keep the change only if the margin loss
(true-class log-probability minus the best other, which equals the logit margin) went down. Samples stop
being queried once fooled (the active set), and each sample's budget is enforced by the query counter.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import AttackParams
from app.ml.attacks.common import margin, rand
from app.ml.attacks.inputs import AttackBatch
from app.ml.attacks.queries import QueryAttack, QueryCounter


class SquareParams(AttackParams):
    max_queries: int = Field(1000, ge=1, le=100_000, description="Per-sample query budget.")
    p_init: float = Field(
        0.8, gt=0.0, le=1.0, description="Initial fraction of pixels in the square; shrinks on the schedule."
    )


def p_selection(p_init: float, it: int, n_queries: int) -> float:
    """The paper's piecewise-constant schedule for the square's pixel fraction, rescaled to the budget."""
    it = int(it / max(n_queries, 1) * 10_000)
    for limit, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128)):
        if it <= limit:
            return p_init / div
    return p_init / (256 if it <= 8000 else 512)


class SquareAttack(QueryAttack, name="square", params=SquareParams, threat_model="score", targeted=True):
    def attack(self, oracle: QueryCounter, batch: AttackBatch) -> Tensor:
        images, eps, low, high = batch.images, batch.eps, batch.low, batch.high
        size, channels, h, w = images.shape
        dev = images.device
        n_queries = self.params.max_queries
        idx = torch.arange(size, device=dev)
        stripes = rand(batch.generator, idx, (channels, 1, w), dev).lt(0.5).to(images.dtype) * 2 - 1
        best = torch.clamp(images + eps * stripes, low, high)
        loss = margin(oracle.probabilities(best, idx).log(), batch.labels, batch.target)
        rows = torch.arange(h, device=dev).view(1, 1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, 1, w)
        for i in range(1, n_queries):
            active = oracle.affordable(loss > 0)
            if active.numel() == 0:
                break
            p = p_selection(self.params.p_init, i, n_queries)
            side = min(max(int(round(math.sqrt(p * h * w))), 1), h - 1)
            draws = rand(batch.generator, active, (2 + channels,), dev)
            top = (draws[:, 0] * (h - side + 1)).floor().clamp_max(h - side).view(-1, 1, 1, 1)
            left = (draws[:, 1] * (w - side + 1)).floor().clamp_max(w - side).view(-1, 1, 1, 1)
            signs = (draws[:, 2:] < 0.5).to(images.dtype).mul(2).sub(1).view(-1, channels, 1, 1)
            window = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
            x_a, lo_a, hi_a = images[active], low[active], high[active]
            current = best[active]
            proposal = torch.where(window, torch.clamp(x_a + eps[active] * signs, lo_a, hi_a), current)
            # As in the paper's code: a proposal that leaves the window as it is would waste a query, so flip it.
            same = (proposal == current).flatten(1).all(1)
            if bool(same.any()):
                flipped = torch.clamp(x_a + eps[active] * -signs, lo_a, hi_a)
                proposal = torch.where(same.view(-1, 1, 1, 1) & window, flipped, proposal)
            probs = oracle.probabilities(proposal, active)
            new_loss = margin(probs.log(), batch.labels[active], batch.target_of(active))
            improved = new_loss < loss[active]
            keep = active[improved]
            best[keep] = proposal[improved]
            loss[keep] = new_loss[improved]
        return best
