"""The base of every input-transform defense: transform in pixel space, then the wrapped net; BPDA on demand."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from app.ml.defenses.outcome import DefenseOutcome, transform_verdicts
from app.ml.model import ArenaModel


class InputDefense(ArenaModel):
    """``forward(x) = net(normalise(transform(x)))``; subclasses implement :meth:`transform`.

    ``_straight_through`` is False on the deployed model. :meth:`straight_through` returns a shallow copy
    (sharing the net, the buffers and the detector settings) on which the transform's backward pass is the
    identity: ``x + (transform(x) - x).detach()`` has the transform's value and the identity's gradient.
    """

    _straight_through: bool = False
    has_detector: bool = False

    def __init__(self, base: ArenaModel, *, name: str, card: dict[str, Any] | None = None) -> None:
        super().__init__(
            base.net,
            mean=base.mean.flatten().tolist(),
            std=base.std.flatten().tolist(),
            image_shape=base.image_shape,  # type: ignore[arg-type]
            num_classes=base.num_classes,
            bounds=base.bounds,
            device=base.device,
            name=name,
            pack_name=base.pack_name,
            card=card,
            differentiable=base.differentiable,
        )
        self.base_name = base.name

    def transform(self, x: Tensor) -> Tensor:
        """The defense's input transformation (squeezing, JPEG, ...): each subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define transform()")

    def _maybe_bpda(self, x: Tensor, squeezed: Tensor) -> Tensor:
        if self._straight_through:
            return x + (squeezed - x).detach()
        return squeezed

    def logits_raw(self, x: Tensor) -> Tensor:
        """The wrapped net on ``x`` itself, without the defense's transform."""
        return super().forward(x)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(self._maybe_bpda(x, self.transform(x)))

    def straight_through(self) -> InputDefense:
        """The same model with BPDA through the transform (for adaptive attacks); never serve it to players."""
        view = copy.copy(self)
        object.__setattr__(view, "_straight_through", True)
        return view

    def detection_score(self, x: Tensor) -> Tensor:
        """Per-image score; higher is more suspicious. Defenses without a detector score 0."""
        return torch.zeros(x.shape[0], device=x.device)

    def detect(self, x: Tensor) -> Tensor:
        """True where the detector flags ``x`` as adversarial (always False without a detector)."""
        return torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

    def defense_outcomes(self, clean: Tensor, shown: Tensor, labels: Tensor) -> list[DefenseOutcome]:
        """Per shown image: rejected by the detector, reformed by the transform, withstood, or fooled."""
        del clean  # the verdict depends on the shown image only
        defended_right = self(shown).argmax(1) == labels
        net_alone_right = self.logits_raw(shown).argmax(1) == labels
        return transform_verdicts(defended_right.cpu(), net_alone_right.cpu(), self.detect(shown).cpu())


def setting_in_range(name: str, value: int, low: int, high: int) -> int:
    """``value``, checked to be a setting from ``low`` to ``high`` (both included)."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value


def attack_view(model: ArenaModel) -> ArenaModel:
    """What an adaptive attack differentiates: the BPDA view of an input defense, else the model itself."""
    return model.straight_through() if isinstance(model, InputDefense) else model


def false_positive_threshold(score: Callable[[Tensor], Tensor], clean: Tensor, target_fpr: float, batch: int) -> float:
    """The detection score that ``target_fpr`` of the ``clean`` images exceed: a detector's threshold for that
    false-positive rate, scored ``batch`` images at a time."""
    if not 0 < target_fpr < 1:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr}")
    with torch.no_grad():
        scores = torch.cat([score(clean[i : i + batch]) for i in range(0, len(clean), batch)])
    return float(torch.quantile(scores.double(), 1 - target_fpr).item())
