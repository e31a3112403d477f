"""Attack registry: ``get_attack(name, **params)`` builds a stateless attack callable on any ArenaModel.

``describe_attacks()`` lists every attack as plain dicts (threat model, norm, budget meaning, parameters with
defaults and ranges, and a plain-words explanation) for ``GET /api/v1/attacks`` and the reveal.
"""

from __future__ import annotations

from typing import Any

from app.ml.attacks.advgan import AdvGAN
from app.ml.attacks.base import Attack, AttackParams, AttackResult, GeneratorArg, RunOutput
from app.ml.attacks.bpda import BPDAPGD, UnrolledPGD
from app.ml.attacks.cw import CarliniWagnerL2
from app.ml.attacks.deepfool import DeepFool, DeepFoolLinf
from app.ml.attacks.evadehc import EvadeHC
from app.ml.attacks.fgsm import FGSM
from app.ml.attacks.genattack import GenAttack
from app.ml.attacks.hopskipjump import HopSkipJump
from app.ml.attacks.mifgsm import MIFGSM
from app.ml.attacks.nes import NES
from app.ml.attacks.one_pixel import OnePixel
from app.ml.attacks.pgd import PGD
from app.ml.attacks.pgd_l2 import PGDL2
from app.ml.attacks.queries import QueryBudgetExceeded, QueryCounter
from app.ml.attacks.square import SquareAttack
from app.ml.attacks.transfer import TransferAttack
from app.ml.errors import UnknownName

_ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (
        FGSM,
        PGD,
        PGDL2,
        MIFGSM,
        DeepFool,
        DeepFoolLinf,
        CarliniWagnerL2,
        SquareAttack,
        NES,
        HopSkipJump,
        GenAttack,
        OnePixel,
        EvadeHC,
        TransferAttack,
        AdvGAN,
        BPDAPGD,
        UnrolledPGD,
    )
}


def available_attacks() -> list[str]:
    return sorted(_ATTACKS)


def get_attack(name: str, **params: Any) -> Attack:
    """Unknown names raise :class:`UnknownName`, unknown parameters ``TypeError``, bad values ``ValueError``."""
    try:
        cls = _ATTACKS[name]
    except KeyError:
        raise UnknownName("attack", name, _ATTACKS) from None
    return cls(**params)


def describe_attack(name: str) -> dict[str, Any]:
    """One attack as a JSON-ready dict: what it sees, its norm and budget, and each parameter's default/range."""
    try:
        cls = _ATTACKS[name]
    except KeyError:
        raise UnknownName("attack", name, _ATTACKS) from None
    schema = cls.Params.model_json_schema()
    params: list[dict[str, Any]] = []
    for field, prop in schema.get("properties", {}).items():
        types = [p.get("type") for p in prop.get("anyOf", [prop])]
        entry: dict[str, Any] = {
            "name": field,
            "type": next((t for t in types if t not in (None, "null")), None),
            "nullable": "null" in types,
            "default": prop.get("default"),
            "description": prop.get("description", ""),
        }
        for key, out in (("minimum", "min"), ("exclusiveMinimum", "min_exclusive"), ("maximum", "max")):
            value = next((p[key] for p in prop.get("anyOf", [prop]) if key in p), None)
            if value is not None:
                entry[out] = value
        params.append(entry)
    return {
        "name": cls.name,
        "threat_model": cls.threat_model,
        "norm": cls.norm,
        "targeted": cls.supports_target,
        "budget": cls.budget,
        "explanation": cls.explanation,
        "params": params,
    }


def describe_attacks() -> list[dict[str, Any]]:
    return [describe_attack(name) for name in available_attacks()]


__all__ = [
    "AdvGAN",
    "BPDAPGD",
    "FGSM",
    "MIFGSM",
    "NES",
    "PGD",
    "PGDL2",
    "Attack",
    "AttackParams",
    "AttackResult",
    "CarliniWagnerL2",
    "DeepFool",
    "DeepFoolLinf",
    "EvadeHC",
    "GenAttack",
    "GeneratorArg",
    "HopSkipJump",
    "OnePixel",
    "QueryBudgetExceeded",
    "QueryCounter",
    "RunOutput",
    "SquareAttack",
    "TransferAttack",
    "available_attacks",
    "describe_attack",
    "describe_attacks",
    "get_attack",
]
