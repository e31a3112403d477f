"""EvadeHC-style hill climbing on decisions only (Dang, Huang & Chang 2017, "Evading Classifiers by Morphing
in the Dark", CCS), L∞.

The attacker has a *morpher* (a random, small change: one random square patch of the image pushed by ±eps per
pixel, kept inside the eps-ball and bounds) and an oracle that only accepts or rejects: does the model still
give the true label? As in EvadeHC, a candidate is scored by random morphing walks: starting from the
candidate, apply unconstrained morphs (the walk may leave the eps-ball, as EvadeHC's walks may break the
tester) and count how many steps it takes until the oracle flips. Fewer steps means the candidate sits closer
to the boundary. Each iteration proposes ``candidates`` morphs of the current image, returns at once if one of
them already flips the label, and otherwise climbs to the candidate with the shortest walk. Every walk step
and candidate check is one counted query; samples stop when fooled or out of budget.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import AttackParams
from app.ml.attacks.common import fooled, rand
from app.ml.attacks.inputs import AttackBatch
from app.ml.attacks.queries import Progress, QueryAttack, QueryCounter


class EvadeHCParams(AttackParams):
    max_queries: int = Field(1000, ge=2, le=1_000_000, description="Per-sample query budget.")
    candidates: int = Field(4, ge=1, le=64, description="Morphs proposed per hill-climbing step.")
    walk_steps: int = Field(8, ge=1, le=100, description="Longest scoring walk (queries per candidate).")
    patch: int = Field(6, ge=1, le=28, description="Side of the square patch one morph changes, in pixels.")


class EvadeHC(QueryAttack, name="evadehc", params=EvadeHCParams, threat_model="decision"):
    def attack(self, oracle: QueryCounter, batch: AttackBatch) -> Tensor:
        p = self.params
        images, labels, eps = batch.images, batch.labels, batch.eps
        _, channels, h, w = images.shape
        n_cand, side = p.candidates, min(p.patch, h, w)
        lo, hi = oracle.bounds
        dev = images.device
        rows_grid = torch.arange(h, device=dev).view(1, 1, 1, h, 1)
        cols_grid = torch.arange(w, device=dev).view(1, 1, 1, 1, w)
        progress = Progress.start(images)
        current = progress.adversarial
        per_iter = n_cand * (1 + p.walk_steps)

        def morph(x: Tensor, rows: Tensor, box: tuple[Tensor, Tensor] | None) -> Tensor:
            """One random patch morph of each of the (n, K, C,H,W) images; within ``box`` if given."""
            n = x.shape[0]
            draws = rand(batch.generator, rows, (n_cand, 2 + channels * h * w), dev)
            top = (draws[..., 0] * (h - side + 1)).floor().clamp_max(h - side).view(n, n_cand, 1, 1, 1)
            left = (draws[..., 1] * (w - side + 1)).floor().clamp_max(w - side).view(n, n_cand, 1, 1, 1)
            signs = (draws[..., 2:] < 0.5).to(x.dtype).mul(2).sub(1).view(n, n_cand, channels, h, w)
            window = (rows_grid >= top) & (rows_grid < top + side) & (cols_grid >= left) & (cols_grid < left + side)
            out = torch.where(window, x + eps[rows].unsqueeze(1) * signs, x)
            if box is None:
                return out.clamp(lo, hi)
            return torch.minimum(torch.maximum(out, box[0].unsqueeze(1)), box[1].unsqueeze(1))

        while True:
            active = oracle.affordable(~progress.done, per_iter)
            if active.numel() == 0:
                break
            n = active.numel()
            y = labels[active].unsqueeze(1).expand(n, n_cand)
            start = current[active].unsqueeze(1).expand(n, n_cand, channels, h, w)
            cands = morph(start, active, (batch.low[active], batch.high[active]))
            won = progress.take_first_hits(active, cands, fooled(oracle.labels(cands, active), y, None))
            # Score the others by random walks: steps until the label flips (walk_steps + 1 if it never does).
            walking = torch.nonzero(~won).squeeze(1)
            if walking.numel() == 0:
                continue
            rows = active[walking]
            walk = cands[walking]
            score = torch.full((rows.numel(), n_cand), float(p.walk_steps + 1), device=dev)
            for step in range(1, p.walk_steps + 1):
                open_rows = torch.nonzero((score > p.walk_steps).any(1)).squeeze(1)
                if open_rows.numel() == 0:
                    break
                walk[open_rows] = morph(walk[open_rows], rows[open_rows], None)
                walk_y = labels[rows[open_rows]].unsqueeze(1).expand(-1, n_cand)
                flips = fooled(oracle.labels(walk[open_rows], rows[open_rows]), walk_y, None)
                sub = score[open_rows]
                score[open_rows] = torch.where(flips & (sub > p.walk_steps), float(step), sub)
            # Ties (often: no walk flipped) go to the first candidate, which is as random as any.
            best = score.argmin(1)
            current[rows] = cands[walking, best]
        return current
