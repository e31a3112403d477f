"""The one interface every attack implements.

Attacks are stateless: an instance holds only validated hyperparameters, and the model, images and budget
arrive at call time (as in Foolbox), so one attack object can serve every model and thread in the service.
The base :meth:`Attack.__call__` owns everything that must hold for *every* attack, so a new attack cannot get
it wrong: input checks, the per-sample eps-ball and bounds projection, success measured from the model's own
answer on the final images, and restoring the model's modes and torch's autograd state even on errors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal, final

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from app.ml.attacks.inputs import AttackBatch, GeneratorArg, Norm, validate_inputs, validate_target
from app.ml.attacks.texts import ATTACK_TEXTS, DEFAULT_BUDGET, EXPLANATIONS_FILE
from app.ml.model import ArenaModel

ThreatModel = Literal["white-box", "score", "decision", "transfer"]


class AttackParams(BaseModel):
    """Hyperparameters of an attack: frozen, keyword-only, strictly typed and range-checked.

    pydantic's ``ValidationError`` is a ``ValueError``, so bad values surface as ``ValueError``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class AttackResult:
    """What an attack produced, per sample. ``success`` is measured on ``adversarial``, never assumed.

    ``linf``/``l2`` are the perturbation sizes actually used (pixel units); ``queries`` counts model calls per
    sample for attacks that budget them (black-box), and is None for gradient attacks; ``steps`` counts the gradient
    steps per sample for iterative attacks that report them (PGD: fewer than its ``steps`` where it stopped early).

    ``logits`` and ``success`` cost one more forward pass of the model on ``adversarial``. It runs on first
    access, not inside the attack: the model service shows a rounded copy of the image and reads the model's
    answer on that copy, so the answer on the unrounded image would be paid for and thrown away on every round
    (a tenth of PGD-10's time against its floor; see benchmarks/RESULTS.md).
    """

    __slots__ = ("adversarial", "linf", "l2", "queries", "steps", "_measure", "_logits", "_success")

    def __init__(
        self,
        adversarial: Tensor,
        linf: Tensor,
        l2: Tensor,
        measure: Callable[[Tensor], tuple[Tensor, Tensor]],
        queries: Tensor | None = None,
        steps: Tensor | None = None,
    ) -> None:
        self.adversarial = adversarial
        self.linf = linf
        self.l2 = l2
        self.queries = queries
        self.steps = steps
        self._measure = measure
        self._logits: Tensor | None = None
        self._success: Tensor | None = None

    def _measured(self) -> tuple[Tensor, Tensor]:
        if self._logits is None or self._success is None:
            self._logits, self._success = self._measure(self.adversarial)
        return self._logits, self._success

    @property
    def logits(self) -> Tensor:
        """The model's logits on ``adversarial`` (computed once, on first access, in eval mode without grad)."""
        return self._measured()[0]

    @property
    def success(self) -> Tensor:
        """Per sample: the model's answer on ``adversarial`` is wrong (untargeted) or the target (targeted)."""
        return self._measured()[1]


@dataclass(frozen=True)
class RunOutput:
    """What :meth:`Attack.run` may return instead of a bare tensor: the candidates plus per-sample query counts
    (black-box attacks) or gradient steps (iterative attacks that report them)."""

    adversarial: Tensor
    queries: Tensor | None = None
    steps: Tensor | None = None


class Attack(ABC):
    """Base class: a subclass declares itself in its class header and implements :meth:`run`::

        class NES(QueryAttack, name="nes", params=NESParams, threat_model="score", targeted=True): ...

    The declaration describes the attack for the registry (``describe_attacks``) and becomes class attributes:
    ``name`` (registered name), ``Params`` (its :class:`AttackParams`), ``norm`` the norm the ``eps`` budget is
    measured in ("l0" attacks change at most a fixed number of pixels, each by at most eps in L∞),
    ``threat_model`` what the attack may see of the model, and ``supports_target`` (keyword ``targeted``).
    What a header leaves out is inherited. A named attack's plain words come from explanations.toml (see
    :mod:`app.ml.attacks.texts`): ``explanation``, one paragraph for the reveal, and ``budget``, how ``eps`` is
    interpreted, where the attack has its own.
    """

    name: ClassVar[str]
    Params: ClassVar[type[AttackParams]]
    norm: ClassVar[Norm] = "linf"
    threat_model: ClassVar[ThreatModel] = "white-box"
    supports_target: ClassVar[bool] = False
    explanation: ClassVar[str]
    budget: ClassVar[str] = DEFAULT_BUDGET
    # Every registered attack by name; the registry fills it in (it imports this module, so cannot be imported here).
    catalogue: ClassVar[Mapping[str, type[Attack]]] = MappingProxyType({})

    def __init_subclass__(
        cls,
        *,
        name: str | None = None,
        params: type[AttackParams] | None = None,
        norm: Norm | None = None,
        threat_model: ThreatModel | None = None,
        targeted: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        declared = {"Params": params, "norm": norm, "threat_model": threat_model, "supports_target": targeted}
        for attribute, value in declared.items():
            if value is not None:
                setattr(cls, attribute, value)
        if name is not None:
            if name not in ATTACK_TEXTS:
                raise LookupError(f"attack {name!r} has no [attacks.{name}] table in {EXPLANATIONS_FILE}")
            cls.name = name
            cls.explanation = ATTACK_TEXTS[name]["explanation"]
            cls.budget = ATTACK_TEXTS[name].get("budget", cls.budget)

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.Params.model_fields))
        if unknown:
            valid = ", ".join(sorted(self.Params.model_fields)) or "none"
            raise TypeError(f"{self.name} got unexpected parameter(s) {', '.join(unknown)}; valid: {valid}")
        self.params = self.Params(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({args})"

    @abstractmethod
    def run(self, model: ArenaModel, batch: AttackBatch) -> Tensor | RunOutput:
        """Return candidate adversarial images for ``batch``; called with grad enabled and the model in eval mode."""

    @final
    def __call__(
        self,
        model: ArenaModel,
        images: Tensor,
        labels: Tensor,
        eps: float | Tensor,
        *,
        generator: GeneratorArg = None,
        target: Tensor | None = None,
    ) -> AttackResult:
        """Attack ``images`` (true ``labels``) within ``eps`` per sample; ``target`` makes it targeted.

        Without a generator a fresh, randomly seeded one is used (torch's global RNG is never touched); pass one
        generator, or one per sample so that a sample's result does not depend on the rest of its batch.
        """
        x, y, eps_b, generator = validate_inputs(model, images, labels, eps, generator, self.norm)
        if self.threat_model == "white-box" and not getattr(model, "differentiable", True):
            raise ValueError(_not_differentiable_message(self.name, model))
        if target is not None:
            if not self.supports_target:
                raise ValueError(f"{self.name} is untargeted only; drop target=")
            target = validate_target(target, y, model)
        if generator is None:
            generator = torch.Generator(device=x.device)
            generator.seed()
        params = list(model.parameters())
        required_grad = [p.requires_grad for p in params]
        grad_was_enabled = torch.is_grad_enabled()
        try:
            with evaluating(model):
                model.requires_grad_(False)
                with torch.inference_mode(False):
                    # A caller inside inference_mode hands over inference tensors, which autograd cannot use.
                    x = x.clone() if x.is_inference() else x
                    y = y.clone() if y.is_inference() else y
                    eps_b = eps_b.clone() if eps_b.is_inference() else eps_b
                    if target is not None and target.is_inference():
                        target = target.clone()
                    lo_bound, hi_bound = model.bounds
                    low = (x - eps_b).clamp_(min=lo_bound)
                    high = (x + eps_b).clamp_(max=hi_bound)
                    with torch.enable_grad():
                        out = self.run(model, AttackBatch(x, y, eps_b, low, high, generator, target))
                    output = out if isinstance(out, RunOutput) else RunOutput(out)
                    candidate, queries = output.adversarial, output.queries
                    with torch.no_grad():
                        if self.norm == "l2":
                            adversarial = project_l2(candidate.detach(), x, eps_b, model.bounds)
                        else:
                            adversarial = _project(candidate.detach(), x, eps_b, low, high)
                        delta = (adversarial - x).flatten(1)
                        return AttackResult(
                            adversarial=adversarial,
                            linf=delta.abs().amax(1),
                            l2=delta.norm(dim=1),
                            measure=_success_measure(model, y, target),
                            queries=None if queries is None else queries.detach().to(torch.int64),
                            steps=None if output.steps is None else output.steps.detach().to(torch.int64),
                        )
        finally:
            for p, flag in zip(params, required_grad, strict=True):
                p.requires_grad_(flag)
            torch.set_grad_enabled(grad_was_enabled)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Run the block with every module of ``model`` in eval mode, and give each module its own mode back after."""
    modules = list(model.modules())
    was_training = [m.training for m in modules]
    try:
        model.eval()
        yield
    finally:
        for module, mode in zip(modules, was_training, strict=True):
            module.training = mode


def _success_measure(
    model: ArenaModel, labels: Tensor, target: Tensor | None
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """The deferred check of :class:`AttackResult`: the model's logits on the images, and whether they succeed.

    Runs whenever it is first asked for, so it sets eval mode and no-grad itself and puts every module's mode
    back afterwards, as the attack call does.
    """

    def measure(adversarial: Tensor) -> tuple[Tensor, Tensor]:
        with evaluating(model), torch.inference_mode(False), torch.no_grad():
            logits = model(adversarial)
        predicted = logits.argmax(1)
        return logits, (predicted != labels if target is None else predicted == target)

    return measure


def _not_differentiable_message(attack: str, model: ArenaModel) -> str:
    """Name the attacks that can be used instead, from the registry's catalogue."""
    usable: dict[str, list[str]] = {"score": [], "decision": [], "transfer": []}
    for name in sorted(Attack.catalogue):
        threat = Attack.catalogue[name].threat_model
        if threat in usable:
            usable[threat].append(name)
    choices = "; ".join(f"{threat}: {', '.join(names)}" for threat, names in usable.items() if names)
    return (
        f"{model.name or 'this model'} is not differentiable (its output is piecewise constant, so its gradient "
        f"is useless), and {attack!r} is a white-box attack that needs the gradient. Attack it through queries "
        f"or transfer instead ({choices})."
    )


def uniform_noise(like: Tensor, generator: GeneratorArg) -> Tensor:
    """U(-1,1) noise shaped like ``like``; with one generator per sample, each row depends only on its own.

    That makes a sample's random start the same whether the batcher put it alone or with 31 others.
    """
    if generator is None:
        raise ValueError("uniform_noise needs a generator (the base class supplies one; the global RNG is off-limits)")
    if isinstance(generator, torch.Generator):
        noise = torch.empty(like.shape, dtype=like.dtype, device=generator.device)
        return noise.uniform_(-1.0, 1.0, generator=generator).to(like.device)
    rows = [
        torch.empty(like.shape[1:], dtype=like.dtype, device=g.device).uniform_(-1.0, 1.0, generator=g)
        for g in generator
    ]
    return torch.stack(rows).to(like.device)


def _project(candidate: Tensor, x: Tensor, eps: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """Clip to the box and make |adv - x| <= eps hold exactly in floating point, not just up to rounding.

    ``x + eps`` rounds, so ``(x + eps) - x`` can exceed eps by one ulp; nudging such pixels one ulp toward x
    makes the guarantee exact, which is what the game's "the budget is never exceeded" promise needs.
    """
    adv = torch.clamp(candidate, low, high)
    for _ in range(4):
        over = (adv - x).abs() > eps
        if not bool(over.any()):
            break
        adv = torch.where(over, torch.nextafter(adv, x), adv)
    return adv


def project_l2(candidate: Tensor, x: Tensor, eps: Tensor, bounds: tuple[float, float]) -> Tensor:
    """Clip to the bounds and scale each perturbation into its L2 ball, exactly (after float rounding).

    Clipping to the bounds first only moves pixels toward x (x is inside the bounds), so it cannot grow the
    norm; rows whose rounded norm still exceeds eps are shrunk a little more, and as a last resort reset to x.
    """
    lo, hi = bounds
    flat_eps = eps.view(-1)
    adv = candidate.clamp(lo, hi)
    delta = adv - x
    norms = delta.flatten(1).norm(dim=1)
    factor = torch.where(norms > flat_eps, flat_eps / norms.clamp_min(1e-30), torch.ones_like(norms))
    adv = (x + delta * factor.view(-1, 1, 1, 1)).clamp_(lo, hi)
    for _ in range(8):
        over = (adv - x).flatten(1).norm(dim=1) > flat_eps
        if not bool(over.any()):
            return adv
        adv = torch.where(over.view(-1, 1, 1, 1), x + (adv - x) * (1.0 - 1e-6), adv)
    over = (adv - x).flatten(1).norm(dim=1) > flat_eps
    return torch.where(over.view(-1, 1, 1, 1), x, adv)
