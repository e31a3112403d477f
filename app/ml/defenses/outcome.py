"""What a defense did to the image a round showed: the line of the reveal that says why a defended opponent was or
was not fooled (issue #8).

A defended opponent that can say more than "fooled or not" implements ``defense_outcomes(clean, shown, labels)``
and returns one :class:`DefenseOutcome` per image; for every other opponent :func:`defense_outcomes` returns None
and the round stores nothing. The verdicts:

* ``rejected``: the defense's detector flags the shown image as adversarial, so a deployed system would refuse
  it, whatever the classifier answered (a clean image can be rejected too: the detector's false positives);
* ``reformed``: the defense's input transform (squeezing, JPEG, a reformer, a projection) put the answer right
  on an image that fools the network without it;
* ``certified``: the shown change is within the radius the certified model proves for the clean image, so no
  image this close could have fooled it;
* ``withstood``: not fooled, and the transform was not what saved it (the network alone gets it right too);
* ``fooled``: the defense let the attack through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Verdict = Literal["rejected", "reformed", "certified", "withstood", "fooled"]
VERDICTS: tuple[Verdict, ...] = ("rejected", "reformed", "certified", "withstood", "fooled")


@dataclass(frozen=True)
class DefenseOutcome:
    verdict: Verdict
    # Certified models: the L∞ radius (pixel units) proven around the clean image; None for other defenses.
    certified_radius: float | None = None


def defense_outcomes(
    model: torch.nn.Module, clean: Tensor, shown: Tensor, labels: Tensor
) -> list[DefenseOutcome] | None:
    """The model's own account of each shown image, or None when the model has no defense to account for."""
    explain = getattr(model, "defense_outcomes", None)
    if explain is None:
        return None
    with torch.inference_mode():
        outcomes = explain(clean, shown, labels)
    if len(outcomes) != len(labels):
        raise RuntimeError(f"{type(model).__name__}.defense_outcomes returned {len(outcomes)} for {len(labels)} images")
    return list(outcomes)


def transform_verdicts(defended_right: Tensor, net_alone_right: Tensor, flagged: Tensor) -> list[DefenseOutcome]:
    """Verdicts of an input-transform defense from three per-image masks (see the module docstring)."""
    out: list[DefenseOutcome] = []
    for rejected, right, alone in zip(flagged.tolist(), defended_right.tolist(), net_alone_right.tolist(), strict=True):
        if rejected:
            out.append(DefenseOutcome("rejected"))
        elif right and not alone:
            out.append(DefenseOutcome("reformed"))
        elif right:
            out.append(DefenseOutcome("withstood"))
        else:
            out.append(DefenseOutcome("fooled"))
    return out
