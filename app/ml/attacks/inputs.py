"""The inputs of one attack call: checked once by the base class, then handed to the attack as an
:class:`AttackBatch`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from app.ml.model import ArenaModel

GeneratorArg = torch.Generator | Sequence[torch.Generator] | None
Norm = Literal["linf", "l2", "l0"]


@dataclass(frozen=True)
class AttackBatch:
    """What :meth:`Attack.run` attacks: the checked images and labels, each sample's budget and box.

    ``eps`` is (B,1,1,1); ``low``/``high`` are the per-pixel box, the L∞ eps-ball intersected with the model's
    bounds (for L2 attacks the L∞ box that contains the L2 ball), which the caller clips the candidates to again
    afterwards. ``target`` (only for ``supports_target`` attacks) holds the labels a targeted attack must reach.
    ``generator`` is never None here: the base makes a fresh one so that no attack ever draws from torch's
    global RNG.
    """

    images: Tensor
    labels: Tensor
    eps: Tensor
    low: Tensor
    high: Tensor
    generator: GeneratorArg
    target: Tensor | None = None

    @property
    def goal(self) -> Tensor:
        """The labels the loss is taken on: the true classes, or a targeted attack's targets."""
        return self.labels if self.target is None else self.target

    def target_of(self, rows: Tensor) -> Tensor | None:
        """The targets of samples ``rows``; None for an untargeted attack."""
        return None if self.target is None else self.target[rows]


def validate_target(target: object, labels: Tensor, model: ArenaModel) -> Tensor:
    """The targets of a targeted call, checked against ``labels``' shape and the model's classes."""
    if not isinstance(target, Tensor) or target.shape != labels.shape or target.dtype != torch.int64:
        raise ValueError(f"target must be an int64 tensor shaped ({labels.shape[0]},), got {describe_value(target)}")
    target = target.detach().to(labels.device)
    if target.min() < 0 or target.max() >= model.num_classes:
        raise ValueError(f"target labels must lie in 0..{model.num_classes - 1}")
    return target


def validate_inputs(
    model: ArenaModel,
    images: Tensor,
    labels: Tensor,
    eps: float | Tensor,
    generator: GeneratorArg,
    norm: Norm = "linf",
) -> tuple[Tensor, Tensor, Tensor, GeneratorArg]:
    """Check a call's arguments against the model; the images, labels, eps shaped (B,1,1,1) and generator(s)."""
    if not isinstance(model, ArenaModel):
        raise TypeError(f"attacks need an ArenaModel (it owns bounds and normalisation), got {type(model).__name__}")
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor shaped (B,C,H,W), got {describe_value(images)}")
    batch = images.shape[0]
    if batch == 0:
        raise ValueError("images is an empty batch")
    if images.device != model.device:
        raise ValueError(f"images are on {images.device} but the model is on {model.device}")
    lo, hi = model.bounds
    if not torch.isfinite(images).all() or images.min() < lo or images.max() > hi:
        raise ValueError(f"images must be finite pixel values within the model's bounds {model.bounds}")
    if not isinstance(labels, Tensor) or labels.shape != (batch,) or labels.dtype != torch.int64:
        raise ValueError(f"labels must be an int64 tensor shaped ({batch},), got {describe_value(labels)}")
    labels = labels.to(images.device)
    if labels.min() < 0 or labels.max() >= model.num_classes:
        raise ValueError(f"labels must lie in 0..{model.num_classes - 1}")

    if isinstance(eps, Tensor):
        eps_t = eps.detach().to(device=images.device, dtype=images.dtype)
        if eps_t.ndim == 0:
            eps_t = eps_t.expand(batch)
        if eps_t.shape != (batch,):
            raise ValueError(f"eps must be a float or a tensor shaped ({batch},), got shape {tuple(eps.shape)}")
    elif isinstance(eps, int | float) and not isinstance(eps, bool):
        if not math.isfinite(eps):
            raise ValueError(f"eps must be finite, got {eps}")
        eps_t = torch.full((batch,), float(eps), dtype=images.dtype, device=images.device)
    else:
        raise ValueError(f"eps must be a float or a tensor, got {type(eps).__name__}")
    span = hi - lo
    if norm == "l2":
        # The largest L2 distance between two images within the bounds.
        span = span * math.sqrt(images[0].numel())
        unit = "L2 norm in pixel units, e.g. 1.5"
    else:
        unit = "pixel units of the model's bounds, e.g. 8/255"
    if not torch.isfinite(eps_t).all() or eps_t.min() < 0 or eps_t.max() > span:
        raise ValueError(f"eps must lie in [0, {span:g}] ({unit}), got {eps_t.min().item():g}..{eps_t.max().item():g}")

    if generator is not None and not isinstance(generator, torch.Generator):
        gens = list(generator)
        if len(gens) != batch or not all(isinstance(g, torch.Generator) for g in gens):
            raise ValueError(f"generator must be None, a torch.Generator or a sequence of {batch} generators")
        generator = gens
    return images.detach(), labels.detach(), eps_t.view(batch, 1, 1, 1), generator


def describe_value(value: object) -> str:
    """What ``value`` is, for an error message: a tensor's dtype and shape, else its type."""
    if isinstance(value, Tensor):
        return f"{value.dtype} tensor shaped {tuple(value.shape)}"
    return type(value).__name__
