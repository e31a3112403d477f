"""GenAttack (Alzantot et al. 2019, "GenAttack: Practical Black-box Attacks with Gradient-Free Optimization"),
untargeted or targeted, L∞.

Score-based genetic algorithm. Each sample evolves its own population of perturbed images inside the eps-ball:
fitness is minus the margin loss (true-class log-probability minus the best other, i.e. the logit margin), the
fittest member survives unchanged (elitism), and the rest of the next generation are children of two parents
drawn in proportion to softmax(fitness / temperature): each pixel comes from one parent with probability
proportional to its selection weight, then mutates with probability ``mutation_rate`` by a uniform amount of
up to ``alpha * eps``, and is projected back into the eps-ball. A generation costs ``population - 1`` queries
(the elite is not re-evaluated); samples stop when a member is adversarial or the budget is spent.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import AttackParams
from app.ml.attacks.common import judge_candidates, rand
from app.ml.attacks.inputs import AttackBatch
from app.ml.attacks.queries import Progress, QueryAttack, QueryCounter


class GenAttackParams(AttackParams):
    max_queries: int = Field(1000, ge=2, le=1_000_000, description="Per-sample query budget.")
    population: int = Field(8, ge=2, le=256, description="Population size per sample.")
    mutation_rate: float = Field(0.05, gt=0.0, le=1.0, description="Probability that a pixel mutates.")
    alpha: float = Field(0.5, gt=0.0, le=2.0, description="Mutation range as a fraction of eps.")
    temperature: float = Field(0.1, gt=0.0, le=100.0, description="Selection temperature on the fitness.")


class GenAttack(QueryAttack, name="genattack", params=GenAttackParams, threat_model="score", targeted=True):
    def attack(self, oracle: QueryCounter, batch: AttackBatch) -> Tensor:
        p = self.params
        images, eps, generator = batch.images, batch.eps, batch.generator
        n_pop = p.population
        shape = images.shape[1:]
        dev = images.device
        idx = torch.arange(images.shape[0], device=dev)
        progress = Progress.start(images)
        adv, done = progress.adversarial, progress.done
        lo5, hi5 = batch.low.unsqueeze(1), batch.high.unsqueeze(1)
        if int(oracle.remaining().min()) < n_pop:
            return adv

        def clip(pop: Tensor, rows: Tensor) -> Tensor:
            return torch.minimum(torch.maximum(pop, lo5[rows]), hi5[rows])

        def fitness(pop: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
            losses, hits = judge_candidates(oracle.probabilities(pop, rows), batch.labels[rows], batch.target_of(rows))
            return -losses, hits

        start = rand(generator, idx, (n_pop, *shape), dev) * 2 - 1
        pop = clip(images.unsqueeze(1) + eps.unsqueeze(1) * start, idx)
        fit, hit = fitness(pop, idx)
        while True:
            progress.take_first_hits(idx, pop, hit & ~done.unsqueeze(1))
            active = oracle.affordable(~done, n_pop - 1)
            if active.numel() == 0:
                break
            pop_a, fit_a = pop[active], fit[active]
            n = active.numel()
            rows_n = torch.arange(n, device=dev)
            elite = fit_a.argmax(1)
            weights = torch.softmax(fit_a / p.temperature, dim=1)  # (n, P)
            cdf = weights.cumsum(1)
            draws = rand(generator, active, (2 * (n_pop - 1),), dev)
            parents = torch.searchsorted(cdf, (draws * cdf[:, -1:]).contiguous()).clamp_max(n_pop - 1)
            p1, p2 = parents[:, : n_pop - 1], parents[:, n_pop - 1 :]
            w1, w2 = weights.gather(1, p1), weights.gather(1, p2)
            take_first = (w1 / (w1 + w2).clamp_min(1e-30)).view(n, n_pop - 1, *([1] * len(shape)))
            pixel_draws = rand(generator, active, (3, n_pop - 1, *shape), dev)
            parent1, parent2 = pop_a[rows_n.unsqueeze(1), p1], pop_a[rows_n.unsqueeze(1), p2]
            child = torch.where(pixel_draws[:, 0] < take_first, parent1, parent2)
            amount = (pixel_draws[:, 2] * 2 - 1) * p.alpha * eps[active].unsqueeze(1)
            child = clip(torch.where(pixel_draws[:, 1] < p.mutation_rate, child + amount, child), active)
            child_fit, child_hit = fitness(child, active)
            pop[active] = torch.cat([pop_a[rows_n, elite].unsqueeze(1), child], dim=1)
            fit[active] = torch.cat([fit_a.gather(1, elite.unsqueeze(1)), child_fit], dim=1)
            hit[active] = torch.cat([torch.zeros_like(child_hit[:, :1]), child_hit], dim=1)
        # Samples never fooled return their fittest member (the base measures whether it fools the model).
        rest = torch.nonzero(~done).squeeze(1)
        adv[rest] = pop[rest, fit[rest].argmax(1)]
        return adv
