"""A certified opponent: a net trained with interval bound propagation (IBP), which proves, per image, a radius
within which no L∞ perturbation can change its answer.

Unlike the other defenses, nothing is hidden from the attacker: the model is an ordinary differentiable net
(attacks see its true gradient). What it adds is a proof: :meth:`CertifiedModel.certifies` says whether the bound
shows that every image in the eps-box keeps the class, and :meth:`CertifiedModel.certified_radius` finds the
largest such eps by bisection. A certified image cannot be fooled within its radius by any attack, so the
empirical accuracy under attack can never fall below the certified accuracy (the soundness check the card and
the tests make).

Bounds are computed in float64 (the net is float32): IBP's margins near zero must not be claimed through
rounding.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor, nn

from app.ml.defenses.interval import input_box, logit_bounds, margin_lower_bounds, normalise_box
from app.ml.defenses.outcome import DefenseOutcome
from app.ml.model import ArenaModel

CERTIFY_DTYPE = torch.float64
MAX_RADIUS = 0.4  # pixel units; the bisection's upper end (no IBP net here certifies anywhere near it)
BISECTION_STEPS = 12  # resolution MAX_RADIUS / 2**12, about 1e-4 (0.025/255)
CERTIFY_BATCH = 500


class CertifiedModel(ArenaModel):
    """An :class:`ArenaModel` whose net is an ``nn.Sequential`` IBP can bound (see app/ml/defenses/interval.py)."""

    def __init__(self, net: nn.Module, **kwargs: Any) -> None:
        if not isinstance(net, nn.Sequential):
            raise TypeError(f"a certified model needs an nn.Sequential net, got {type(net).__name__}")
        super().__init__(net, **kwargs)

    def _box(self, x: Tensor, eps: float | Tensor) -> tuple[Tensor, Tensor]:
        x = x.to(self.device, CERTIFY_DTYPE)
        eps = torch.as_tensor(eps, dtype=CERTIFY_DTYPE, device=self.device)
        return normalise_box(input_box(x, eps, self.bounds), self.mean, self.std)

    def logit_bounds(self, x: Tensor, eps: float | Tensor) -> tuple[Tensor, Tensor]:
        """Lower and upper bounds (float64) on each logit over the L∞ box of radius ``eps`` around ``x``."""
        with torch.no_grad():
            return logit_bounds(self.net, self._box(x, eps))  # type: ignore[arg-type]

    def margin_bounds(self, x: Tensor, labels: Tensor, eps: float | Tensor) -> Tensor:
        """(B, classes) float64 lower bounds on ``logit[label] - logit[j]`` over the box; 0 at j = label."""
        with torch.no_grad():
            return margin_lower_bounds(self.net, self._box(x, eps), labels.to(self.device))  # type: ignore[arg-type]

    def certifies(self, x: Tensor, labels: Tensor, eps: float | Tensor) -> Tensor:
        """True where the model answers ``labels[i]`` on ``x[i]`` and IBP proves it keeps that answer for every
        image within L∞ distance ``eps`` (a float or one value per image) inside the pixel bounds."""
        labels = labels.to(self.device)
        margins = self.margin_bounds(x, labels, eps)
        margins.scatter_(1, labels.view(-1, 1), float("inf"))  # the label's own column is 0 by construction
        with torch.no_grad():
            answered = self(x.to(self.device)).argmax(1) == labels
        return answered & (margins.amin(1) > 0)

    def certified_radius(
        self, x: Tensor, labels: Tensor | None = None, *, max_eps: float = MAX_RADIUS, steps: int = BISECTION_STEPS
    ) -> Tensor:
        """Per image, the largest eps (pixel units, to ``max_eps / 2**steps``) at which :meth:`certifies` holds
        for ``labels`` (default: the model's own answers); 0 where the model does not answer the label.

        Bisection is valid because the bound is monotone in eps: a smaller box lies inside a larger one and
        interval arithmetic keeps that inclusion, so once a radius is certified every smaller one is too."""
        x = x.to(self.device)
        if labels is None:
            with torch.no_grad():
                labels = self(x).argmax(1)
        labels = labels.to(self.device)
        lo = torch.zeros(len(x), dtype=CERTIFY_DTYPE, device=self.device)
        hi = torch.full_like(lo, max_eps)
        at_top = self.certifies(x, labels, hi)
        lo = torch.where(at_top, hi, lo)
        for _ in range(steps):
            mid = (lo + hi) / 2
            ok = self.certifies(x, labels, mid) & ~at_top
            lo, hi = torch.where(ok, mid, lo), torch.where(ok | at_top, hi, mid)
        return lo.float()

    def defense_outcomes(self, clean: Tensor, shown: Tensor, labels: Tensor) -> list[DefenseOutcome]:
        """Per round: "certified" when the shown change lies within the radius proven around the clean image for
        its true class (then no attack could have fooled it), else "withstood" or "fooled"; with the radius."""
        radius = self.certified_radius(clean, labels).cpu()
        change = (shown.to(clean.device) - clean).flatten(1).abs().amax(1).cpu()
        with torch.no_grad():
            right = (self(shown.to(self.device)).argmax(1) == labels.to(self.device)).cpu()
        out = []
        for r, linf, ok in zip(radius.tolist(), change.tolist(), right.tolist(), strict=True):
            verdict = "certified" if r > 0 and linf <= r else "withstood" if ok else "fooled"
            out.append(DefenseOutcome(verdict, certified_radius=float(r)))
        return out


def measure_certification(
    model: CertifiedModel, images: Tensor, labels: Tensor, eps_values: tuple[float, ...]
) -> dict[str, Any]:
    """Clean accuracy, the share certified at each eps, and the certified radii's quantiles on ``images``."""
    started = time.perf_counter()
    answered, radii, certified = [], [], {eps: [] for eps in eps_values}
    for start in range(0, len(labels), CERTIFY_BATCH):
        x, y = images[start : start + CERTIFY_BATCH], labels[start : start + CERTIFY_BATCH]
        with torch.no_grad():
            answered.append((model(x.to(model.device)).argmax(1) == y.to(model.device)).cpu())
        for eps in eps_values:
            certified[eps].append(model.certifies(x, y, eps).cpu())
        radii.append(model.certified_radius(x, y).cpu())
    radius = torch.cat(radii).double()
    quantiles = {f"q{int(q * 100)}": radius.quantile(q).item() for q in (0.25, 0.5, 0.75)}
    return {
        "method": "interval bound propagation (Gowal et al. 2018), last layer elided into the margins, float64",
        "n": len(labels),
        "clean_accuracy": torch.cat(answered).float().mean().item(),
        "certified_accuracy": {f"{eps:g}": torch.cat(certified[eps]).float().mean().item() for eps in eps_values},
        "median_radius": quantiles["q50"],
        "radius_quantiles": quantiles,
        "mean_radius": radius.mean().item(),
        "radius_means": f"largest L∞ eps (pixel units) IBP certifies for the true label, by {BISECTION_STEPS}-step "
        f"bisection on [0, {MAX_RADIUS}]; 0 for a misclassified image",
        "time_s": round(time.perf_counter() - started, 1),
    }
