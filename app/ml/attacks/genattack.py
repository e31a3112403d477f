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

from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import AttackParams, GeneratorArg
from app.ml.attacks.common import fooled, margin, rand
from app.ml.attacks.queries import QueryAttack, QueryCounter


class GenAttackParams(AttackParams):
    max_queries: int = Field(1000, ge=2, le=1_000_000, description="Per-sample query budget.")
    population: int = Field(8, ge=2, le=256, description="Population size per sample.")
    mutation_rate: float = Field(0.05, gt=0.0, le=1.0, description="Probability that a pixel mutates.")
    alpha: float = Field(0.5, gt=0.0, le=2.0, description="Mutation range as a fraction of eps.")
    temperature: float = Field(0.1, gt=0.0, le=100.0, description="Selection temperature on the fitness.")


class GenAttack(QueryAttack):
    name: ClassVar[str] = "genattack"
    Params: ClassVar[type[AttackParams]] = GenAttackParams
    params: GenAttackParams
    threat_model = "score"
    supports_target: ClassVar[bool] = True
    explanation: ClassVar[str] = (
        "GenAttack breeds adversarial images the way nature breeds animals. It keeps a small population of "
        "slightly altered copies of the picture, scores each by how much it lowers the network's confidence "
        "in the right answer, lets the best ones pair up and mixes their pixels, adds random mutations, and "
        "repeats. No gradient, no look inside: only the network's confidence scores drive the evolution."
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
        n_pop = p.population
        batch = images.shape[0]
        shape = images.shape[1:]
        dev = images.device
        idx = torch.arange(batch, device=dev)
        adv = images.clone()
        lo5, hi5 = low.unsqueeze(1), high.unsqueeze(1)
        if int(oracle.remaining().min()) < n_pop:
            return adv

        def clip(pop: Tensor, rows: Tensor) -> Tensor:
            return torch.minimum(torch.maximum(pop, lo5[rows]), hi5[rows])

        def fitness(pop: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
            n, k = pop.shape[:2]
            probs = oracle.probabilities(pop, rows).flatten(0, 1)
            y = labels[rows].repeat_interleave(k)
            t = None if target is None else target[rows].repeat_interleave(k)
            fit = -margin(probs.clamp_min(1e-30).log(), y, t).view(n, k)
            return fit, fooled(probs.argmax(1), y, t).view(n, k)

        start = rand(generator, idx, (n_pop, *shape), dev) * 2 - 1
        pop = clip(images.unsqueeze(1) + eps.unsqueeze(1) * start, idx)
        fit, hit = fitness(pop, idx)
        done = torch.zeros(batch, dtype=torch.bool, device=dev)
        while True:
            found = hit.any(1) & ~done
            if bool(found.any()):
                rows = torch.nonzero(found).squeeze(1)
                first = hit[rows].float().argmax(1)
                adv[rows] = pop[rows, first]
                done[rows] = True
            active = torch.nonzero(~done & (oracle.remaining().to(dev) >= n_pop - 1)).squeeze(1)
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
