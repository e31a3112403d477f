"""Carlini-Wagner L2 (Carlini & Wagner 2017, "Towards Evaluating the Robustness of Neural Networks").

Minimise ||x' - x||_2^2 + c * max(z_y - max_{j!=y} z_j, -kappa) over w, with x' = (tanh(w)+1)/2 mapped onto the
pixel bounds (so x' never leaves them), using Adam. The constant c is tuned per sample by binary search:
after each of ``binary_search_steps`` rounds, a sample that was fooled halves its c interval downwards (a
smaller c favours a smaller perturbation), a sample that was not multiplies c by 10 until it first succeeds.

Compute: ``steps`` is the *total* number of Adam steps (forward+backward passes), split evenly across the
binary-search rounds; unlike the original, which restarts every round from the clean image, each round
continues from where the previous one stopped (with fresh Adam moments), so no work is thrown away and the
whole search costs what a single run of ``steps`` steps costs. A sample leaves a round early once its loss has
stopped improving (``abort_early``), and samples whose search interval has converged leave the batch.
The best (smallest-L2) adversarial image seen per sample is returned. CW minimises the perturbation rather than
respecting a budget: the result is clipped to the L2 eps-ball afterwards and success re-measured there
(Foolbox's convention); pass a large eps (e.g. 28.0) to see the unclipped result.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor

from app.ml.attacks.base import Attack, AttackParams
from app.ml.attacks.common import fooled, forward_bucketed, margin
from app.ml.attacks.inputs import AttackBatch
from app.ml.model import ArenaModel


class CWParams(AttackParams):
    steps: int = Field(100, ge=1, le=100_000, description="Total Adam steps over all binary-search rounds.")
    binary_search_steps: int = Field(5, ge=1, le=50, description="Rounds of the per-sample search over c.")
    initial_const: float = Field(1.0, gt=0.0, le=1e6, description="Starting trade-off constant c.")
    confidence: float = Field(0.0, ge=0.0, le=100.0, description="Logit margin kappa required to count as fooled.")
    learning_rate: float = Field(0.05, gt=0.0, le=10.0, description="Adam step size in tanh space.")
    abort_early: bool = Field(True, description="A sample ends a round once its loss improves by < 0.1%.")


class CarliniWagnerL2(Attack, name="cw", params=CWParams, norm="l2", targeted=True):
    def run(self, model: ArenaModel, batch: AttackBatch) -> Tensor:
        images, labels = batch.images, batch.labels
        p = self.params
        lo, hi = model.bounds
        size = images.shape[0]
        dev = images.device
        scale = (hi - lo) / 2.0
        w_all = torch.atanh(((images - lo) / scale - 1.0).clamp(-1 + 1e-6, 1 - 1e-6))
        c = torch.full((size,), p.initial_const, device=dev)
        c_lo = torch.zeros(size, device=dev)
        c_hi = torch.full((size,), math.inf, device=dev)
        best_l2 = torch.full((size,), math.inf, device=dev)
        best = images.clone()
        rounds = p.binary_search_steps
        per_round = [p.steps // rounds + (1 if r < p.steps % rounds else 0) for r in range(rounds)]
        active = torch.arange(size, device=dev)
        beta1, beta2 = 0.9, 0.999
        for r, n_steps in enumerate(per_round):
            if active.numel() == 0 or n_steps == 0:
                break
            x0, y = images[active], labels[active]
            t_act = batch.target_of(active)
            w = w_all[active].clone()
            m = torch.zeros_like(w)
            v = torch.zeros_like(w)
            c_act = c[active]
            succeeded = torch.zeros(active.numel(), dtype=torch.bool, device=dev)
            prev = torch.full((active.numel(),), math.inf, device=dev)
            check_every = max(1, n_steps // 10)
            # Rows (local to this round) still optimising; a row whose loss stalls leaves early, so the
            # decision for one sample never depends on the others in its batch.
            run = torch.arange(active.numel(), device=dev)
            for t in range(1, n_steps + 1):
                if run.numel() == 0:
                    break
                w_r = w[run].requires_grad_(True)
                adv = (torch.tanh(w_r) + 1.0) * scale + lo
                logits = forward_bucketed(model, adv)
                y_r = y[run]
                t_r = None if t_act is None else t_act[run]
                dist = (adv - x0[run]).flatten(1).pow(2).sum(1)
                f = margin(logits, y_r, t_r).clamp_min(-p.confidence)
                loss = dist + c_act[run] * f
                (grad,) = torch.autograd.grad(loss.sum(), w_r)
                with torch.no_grad():
                    adv = adv.detach()
                    is_adv = fooled(logits.argmax(1), y_r, t_r)
                    if p.confidence > 0:
                        is_adv &= margin(logits, y_r, t_r) <= -p.confidence
                    succeeded[run] |= is_adv
                    l2 = dist.detach().sqrt()
                    rows = active[run]
                    better = is_adv & (l2 < best_l2[rows])
                    if bool(better.any()):
                        best_l2[rows[better]] = l2[better]
                        best[rows[better]] = adv[better]
                    m_r = m[run].mul_(beta1).add_(grad, alpha=1 - beta1)
                    v_r = v[run].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    m[run], v[run] = m_r, v_r
                    step = (m_r / (1 - beta1**t)) / ((v_r / (1 - beta2**t)).sqrt_().add_(1e-8))
                    w[run] = w_r.detach() - p.learning_rate * step
                    if p.abort_early and t % check_every == 0:
                        cur = loss.detach()
                        stalled = cur > prev[run] * 0.999
                        prev[run] = cur
                        run = run[~stalled]
            with torch.no_grad():
                w_all[active] = w
                # Binary search over c, per sample.
                ok = succeeded
                c_hi[active] = torch.where(ok, torch.minimum(c_hi[active], c_act), c_hi[active])
                c_lo[active] = torch.where(ok, c_lo[active], torch.maximum(c_lo[active], c_act))
                bounded = torch.isfinite(c_hi[active])
                new_c = torch.where(bounded, (c_lo[active] + c_hi[active]) / 2, c_act * 10)
                c[active] = new_c
                if r < rounds - 1:
                    # Samples whose interval has converged gain nothing from more rounds.
                    converged = bounded & ((c_hi[active] - c_lo[active]) <= 0.01 * c_hi[active])
                    active = active[~converged]
        return best
