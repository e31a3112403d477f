"""Science mode's conditions: what a round shows, drawn at random under a mix, so that people's accuracy on
attacked images can be compared with the right controls.

- adversarial: the attack on the opponent (plain play).
- clean: the unperturbed image (how well people and model do without any attack).
- noise: random noise of the same norm and budget as the attack (is it the attack, or any change this size?).
- flipped: the attack's change turned upside down (clean − δ), as in Elsayed et al. 2018: same size, same pixels,
  but it should not push towards the adversarial class.
- transfer: crafted on a surrogate model and shown to the opponent, which the attack never touched.

A mix is written ``adversarial=0.6,clean=0.1,noise=0.1,flipped=0.1,transfer=0.1`` (or given as a mapping); weights
need not sum to one, and a bare name weighs 1 (``adversarial`` alone is plain play). The draw uses the system's
random source, like round ids.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from app import messages
from app.errors import Invalid

CONDITIONS = ("adversarial", "clean", "noise", "flipped", "transfer")

DESCRIPTIONS = {
    "adversarial": "attacked: the change was built to fool the machine",
    "clean": "a control: this image was not changed at all",
    "noise": "a control: random noise of the same size as an attack, not built to fool anyone",
    "flipped": "a control: the attack's change turned upside down (same size, opposite direction)",
    "transfer": "attacked on another model: this machine never saw the attack being made",
}

PLAIN = {"adversarial": 1.0}
_random = secrets.SystemRandom()


def parse_mix(raw: str | Mapping[str, object] | None) -> dict[str, float]:
    """A validated mix, weights normalised to sum to one. ``None`` or empty means plain play (adversarial only)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return dict(PLAIN)
    items: list[tuple[str, object]]
    if isinstance(raw, str):
        items = []
        for part in raw.split(","):
            name, sep, weight = part.partition("=")
            items.append((name.strip(), weight.strip() if sep else "1"))  # a bare name weighs 1
    else:
        items = list(raw.items())
    mix: dict[str, float] = {}
    for name, weight in items:
        if name not in CONDITIONS:
            raise Invalid(messages.CONDITION_MIX_INVALID.format(valid=", ".join(CONDITIONS)))
        try:
            value = float(weight)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise Invalid(messages.CONDITION_MIX_INVALID.format(valid=", ".join(CONDITIONS))) from None
        if not 0 <= value <= 1000 or value != value:
            raise Invalid(messages.CONDITION_MIX_INVALID.format(valid=", ".join(CONDITIONS)))
        mix[name] = mix.get(name, 0.0) + value
    total = sum(mix.values())
    if total <= 0:
        raise Invalid(messages.CONDITION_MIX_INVALID.format(valid=", ".join(CONDITIONS)))
    return {name: weight / total for name, weight in mix.items() if weight > 0}


def draw(mix: Mapping[str, float]) -> str:
    names = list(mix)
    return _random.choices(names, weights=[mix[name] for name in names], k=1)[0]
