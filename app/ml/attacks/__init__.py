"""Attack registry: ``get_attack(name, **params)`` builds a stateless attack callable on any ArenaModel."""

from __future__ import annotations

from typing import Any

from app.ml.attacks.base import Attack, AttackParams, AttackResult, GeneratorArg
from app.ml.attacks.fgsm import FGSM
from app.ml.attacks.pgd import PGD
from app.ml.registry_errors import UnknownName

_ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (FGSM, PGD)}


def available_attacks() -> list[str]:
    return sorted(_ATTACKS)


def get_attack(name: str, **params: Any) -> Attack:
    """Unknown names raise :class:`UnknownName`, unknown parameters ``TypeError``, bad values ``ValueError``."""
    try:
        cls = _ATTACKS[name]
    except KeyError:
        raise UnknownName("attack", name, _ATTACKS) from None
    return cls(**params)


__all__ = [
    "FGSM",
    "PGD",
    "Attack",
    "AttackParams",
    "AttackResult",
    "GeneratorArg",
    "available_attacks",
    "get_attack",
]
