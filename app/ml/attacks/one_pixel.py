"""Few-pixel attack by differential evolution (Su, Vargas & Sakurai 2019, "One Pixel Attack for Fooling Deep
Neural Networks").

Score-based. A candidate is ``pixels`` genes of (row, column, value per channel), each in [0, 1); it sets those
pixels of the clean image to the decoded values. Differential evolution (DE/rand/1, F = ``mutation``, no
crossover, as in the paper) evolves a population per sample: each member's trial is a + F(b - c) of three other
members, and replaces it when its margin loss is lower. The budget is the pixel count: at most ``pixels``
pixel positions change, and each changed value is also kept within eps of the clean value (L∞), so eps = 1.0
lets the chosen pixels take any value. A generation costs ``population`` queries per sample.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import AttackParams
from app.ml.attacks.common import judge_candidates, rand
from app.ml.attacks.inputs import AttackBatch
from app.ml.attacks.queries import Progress, QueryAttack, QueryCounter


class OnePixelParams(AttackParams):
    pixels: int = Field(1, ge=1, le=784, description="Number of pixel positions the attack may change (L0 budget).")
    max_queries: int = Field(1000, ge=2, le=1_000_000, description="Per-sample query budget.")
    population: int = Field(40, ge=4, le=1_000, description="Differential-evolution population per sample.")
    mutation: float = Field(0.5, gt=0.0, le=2.0, description="Differential weight F.")


class OnePixel(QueryAttack, name="one-pixel", params=OnePixelParams, norm="l0", threat_model="score", targeted=True):
    def attack(self, oracle: QueryCounter, batch: AttackBatch) -> Tensor:
        p = self.params
        images, low, high, generator = batch.images, batch.low, batch.high, batch.generator
        size, channels, h, w = images.shape
        n_pop, k = p.population, p.pixels
        genes = k * (2 + channels)
        dev = images.device
        idx = torch.arange(size, device=dev)
        progress = Progress.start(images)
        adv, done = progress.adversarial, progress.done
        if int(oracle.remaining().min()) < n_pop:
            return adv

        def decode(cand: Tensor, rows: Tensor) -> Tensor:
            """(n, P, genes) in [0,1) -> images (n, P, C, H, W)."""
            n = cand.shape[0]
            g = cand.view(n, n_pop, k, 2 + channels)
            pos = (g[..., 0] * h).floor().clamp_max(h - 1) * w + (g[..., 1] * w).floor().clamp_max(w - 1)
            pos = pos.long().unsqueeze(2).expand(n, n_pop, channels, k)  # (n, P, C, k)
            lo_f = low[rows].flatten(2).unsqueeze(1).expand(n, n_pop, channels, h * w)
            hi_f = high[rows].flatten(2).unsqueeze(1).expand(n, n_pop, channels, h * w)
            lo_v, hi_v = lo_f.gather(3, pos), hi_f.gather(3, pos)
            values = lo_v + g[..., 2:].permute(0, 1, 3, 2) * (hi_v - lo_v)
            out = images[rows].flatten(2).unsqueeze(1).expand(n, n_pop, channels, h * w).clone()
            out.scatter_(3, pos, values)
            return out.view(n, n_pop, channels, h, w)

        def loss(cand: Tensor, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            imgs = decode(cand, rows)
            value, hits = judge_candidates(oracle.probabilities(imgs, rows), batch.labels[rows], batch.target_of(rows))
            return value, hits, imgs

        pop = rand(generator, idx, (n_pop, genes), dev)
        fit, hit, imgs = loss(pop, idx)
        members = torch.arange(n_pop, device=dev)
        while True:
            progress.take_first_hits(idx, imgs, hit)
            active = oracle.affordable(~done, n_pop)
            if active.numel() == 0:
                break
            n = active.numel()
            # DE/rand/1: three members distinct from the one being replaced (offsets avoid it by construction).
            offs = (rand(generator, active, (n_pop, 3), dev) * (n_pop - 1)).floor().long().clamp_max(n_pop - 2) + 1
            pick = (members.view(1, n_pop, 1) + offs) % n_pop
            pa = pop[active]
            rows_n = torch.arange(n, device=dev).view(n, 1)
            a, b, c = pa[rows_n, pick[..., 0]], pa[rows_n, pick[..., 1]], pa[rows_n, pick[..., 2]]
            trial = (a + p.mutation * (b - c)).clamp(0.0, 1.0 - 1e-6)
            t_fit, t_hit, t_imgs = loss(trial, active)
            better = t_fit < fit[active]
            new_pop = torch.where(better.unsqueeze(2), trial, pa)
            pop[active] = new_pop
            fit[active] = torch.where(better, t_fit, fit[active])
            hit = torch.zeros_like(hit)
            hit[active] = t_hit & better
            imgs_full = torch.zeros(n, n_pop, *images.shape[1:], device=dev)
            imgs_full[t_hit & better] = t_imgs[t_hit & better]
            imgs = torch.zeros(size, n_pop, *images.shape[1:], device=dev)
            imgs[active] = imgs_full
        rest = torch.nonzero(~done).squeeze(1)
        if rest.numel():
            best = fit[rest].argmin(1)
            adv[rest] = decode(pop[rest], rest)[torch.arange(rest.numel(), device=dev), best]
        return adv
