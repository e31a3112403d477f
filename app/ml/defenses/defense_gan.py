"""Defense-GAN (Samangouei, Kabkab & Chellappa 2018): classify the generator's closest image to the input.

A generator G is trained on clean training images; before classification the input x is replaced by G(z*),
z* = argmin_z ||G(z) - x||², found by ``steps`` (L) Adam steps on z from ``restarts`` (R) random starts, the best
restart kept per image. Adversarial noise off the generator's range is meant to be projected away.

The projection is an inner optimisation run on detached copies, so the deployed model's gradient with respect to
its input is exactly zero (the output is re-attached as ``x * 0 + G(z*)``, as for JPEG): a plain gradient attack
learns nothing. Athalye, Carlini & Wagner (2018) broke it with BPDA, differentiating the projection as the
identity (G(z*) is close to x on images the generator can reach): :meth:`InputDefense.straight_through`.

Each image is projected on its own, from the same ``seed``-ed restarts, in a batch of its R restarts only: the
result for an image is bit-for-bit the same whatever batch it arrives in, so a round regenerated from its seed
reproduces exactly (batching images together lets the CPU kernels pick other summation orders).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from app.ml.defenses.base import InputDefense
from app.ml.model import ArenaModel
from app.ml.nets.fashion_gan import FashionGenerator

# Chosen for play on one CPU thread (measured in the card: clean accuracy and seconds per image); the paper used
# L = 200 plain gradient steps and R = 10 restarts on MNIST.
DEFAULT_STEPS = 10
DEFAULT_RESTARTS = 4
DEFAULT_STEP_SIZE = 0.3
PROJECTION_SEED = 0


ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def _decode(layers: list[tuple[Tensor, Tensor]], z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    (w1, b1), (w2, b2), (w3, b3) = layers
    h1 = torch.addmm(b1, z, w1.t()).clamp_(min=0)
    h2 = torch.addmm(b2, h1, w2.t()).clamp_(min=0)
    return h1, h2, torch.addmm(b3, h2, w3.t()).sigmoid_()


def reconstruction_gradient(layers: list[tuple[Tensor, Tensor]], z: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """``(d/dz ||G(z) - target||², G(z))`` for each row of ``z``, by hand through the folded MLP (the backward pass
    autograd would compute, without its per-operation bookkeeping: the projection runs L*R of them per image)."""
    (w1, _), (w2, _), (w3, _) = layers
    h1, h2, out = _decode(layers, z)
    delta = 2 * (out - target) * out * (1 - out)
    delta = (delta @ w3) * (h2 > 0)
    delta = (delta @ w2) * (h1 > 0)
    return delta @ w1, out


def starting_codes(
    generator: FashionGenerator, restarts: int, seed: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """The ``seed``-ed N(0, I) codes every image's descents start from: the same for the deployed projection and
    the unrolled one an attack differentiates, so the attack follows the very descents the defense runs."""
    starts = torch.randn(restarts, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    return starts.to(device=device, dtype=dtype)


@dataclass(frozen=True)
class Projection:
    """How an image is projected onto the generator's range: the best of ``restarts`` Adam descents of ``steps``
    steps of ``step_size`` on the code, all started from the same ``seed``-ed N(0, I) codes."""

    steps: int
    restarts: int
    step_size: float
    seed: int = PROJECTION_SEED


def project_onto_range(generator: FashionGenerator, x: Tensor, projection: Projection) -> tuple[Tensor, Tensor]:
    """``(G(z*), err)`` for each image of ``x``: the best of the ``projection``'s Adam descents on ||G(z) - x||²
    (summed over pixels).

    Plain tensor arithmetic on detached copies, with the gradient written out: it runs the same whatever the
    caller's autograd state (the model service classifies under ``inference_mode``), never touches the
    generator's ``requires_grad`` and returns tensors without history.
    """
    beta1, beta2 = ADAM_BETAS
    steps, step_size = projection.steps, projection.step_size
    with torch.inference_mode(False), torch.no_grad():
        layers = generator.folded_layers()
        starts = starting_codes(generator, projection.restarts, projection.seed, x.device, layers[0][0].dtype)
        flat = x.detach().flatten(1).to(starts.dtype).clone()
        images, errors = [], []
        for target in flat:
            z = starts.clone()
            first, second = torch.zeros_like(z), torch.zeros_like(z)
            for step in range(1, steps + 1):
                grad, _ = reconstruction_gradient(layers, z, target)
                first.mul_(beta1).add_(grad, alpha=1 - beta1)
                second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (second / (1 - beta2**step)).sqrt_().add_(ADAM_EPS)
                z.addcdiv_(first, denom, value=-step_size / (1 - beta1**step))
            candidates = _decode(layers, z)[2]
            err = (candidates - target).pow(2).sum(1)
            best = int(err.argmin())
            images.append(candidates[best])
            errors.append(err[best])
        projected = torch.stack(images).view_as(x).to(x.dtype)
        return projected, torch.stack(errors)


def unrolled_projection(generator: FashionGenerator, x: Tensor, projection: Projection) -> Tensor:
    """G(z*) as a differentiable function of ``x``: the same Adam descents as :func:`project_onto_range`, all
    images at once and recorded by autograd, so ``backward`` follows each step's dependence on ``x`` (the
    "differentiate through the optimisation" attack that Athalye, Carlini & Wagner 2018 name for Defense-GAN,
    feasible here because the projection takes only L = 10 steps). The best restart per image is chosen without
    gradient. Batched, so the last bits may differ from the per-image projection the deployed model runs: what
    an attack built on it achieves is always measured on the deployed model."""
    beta1, beta2 = ADAM_BETAS
    steps, restarts, step_size = projection.steps, projection.restarts, projection.step_size
    layers = generator.folded_layers()
    starts = starting_codes(generator, restarts, projection.seed, x.device, layers[0][0].dtype)
    target = x.flatten(1).repeat_interleave(restarts, dim=0)  # row i * restarts + r: image i, restart r
    z = starts.repeat(x.shape[0], 1)
    first, second = torch.zeros_like(z), torch.zeros_like(z)
    for step in range(1, steps + 1):
        grad, _ = reconstruction_gradient(layers, z, target)
        first = first * beta1 + grad * (1 - beta1)
        second = second * beta2 + grad * grad * (1 - beta2)
        denom = (second / (1 - beta2**step)).sqrt() + ADAM_EPS
        z = z - (step_size / (1 - beta1**step)) * first / denom
    candidates = _decode(layers, z)[2].view(x.shape[0], restarts, -1)
    with torch.no_grad():
        best = (candidates - target.view_as(candidates)).pow(2).sum(2).argmin(1)
    chosen = candidates[torch.arange(x.shape[0], device=x.device), best]
    return chosen.view_as(x).to(x.dtype)


class DefenseGAN(InputDefense):
    """Classifies the projection of the input onto the generator's range (``transform``)."""

    _unrolled: bool = False
    _batched: bool = False

    def __init__(
        self,
        base: ArenaModel,
        generator: FashionGenerator,
        *,
        steps: int = DEFAULT_STEPS,
        restarts: int = DEFAULT_RESTARTS,
        step_size: float = DEFAULT_STEP_SIZE,
        seed: int = PROJECTION_SEED,
        name: str = "fashion-defgan",
        card: dict[str, Any] | None = None,
    ) -> None:
        if steps < 0 or restarts < 1 or step_size <= 0:
            raise ValueError(f"need steps >= 0, restarts >= 1, step_size > 0; got {steps}, {restarts}, {step_size}")
        super().__init__(base, name=name, card=card)
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        self.steps, self.restarts, self.step_size, self.seed = steps, restarts, step_size, seed

    @property
    def projection(self) -> Projection:
        return Projection(self.steps, self.restarts, self.step_size, self.seed)

    def reconstruct(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """G(z*) for each image of ``x`` and its squared L2 reconstruction error (what the reveal can show)."""
        return project_onto_range(self.generator, x, self.projection)

    def transform(self, x: Tensor) -> Tensor:
        if self._unrolled:
            return unrolled_projection(self.generator, x, self.projection)
        if self._batched:
            with torch.no_grad():
                return unrolled_projection(self.generator, x, self.projection)
        projected, _ = self.reconstruct(x)
        return x * 0 + projected

    def unrolled(self) -> DefenseGAN:
        """The same model with the projection differentiated step by step (for adaptive attacks); never serve it
        to players: it is slower and batched."""
        view = copy.copy(self)
        object.__setattr__(view, "_unrolled", True)
        return view

    def batched_straight_through(self) -> DefenseGAN:
        """BPDA through the projection of all images at once (the unrolled descents, without recording them):
        several times cheaper per query than the deployed per-image projection, and equal to it up to the last
        bits, so an attack may query it as long as its results are checked on the deployed model."""
        view = self.straight_through()
        assert isinstance(view, DefenseGAN)  # straight_through() copies the model, class included
        object.__setattr__(view, "_batched", True)
        return view

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, steps={self.steps}, restarts={self.restarts}, step_size={self.step_size}"
