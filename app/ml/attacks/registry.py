"""Attack registry: ``get_attack(name, **params)`` builds a stateless attack callable on any ArenaModel.

``describe_attacks()`` lists every attack as plain dicts (threat model, norm, budget meaning, parameters with
defaults and ranges, and a plain-words explanation) for ``GET /api/v1/attacks`` and the reveal.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from app.ml.attacks.advgan import AdvGAN
from app.ml.attacks.base import Attack
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

# The base class (to name the alternatives in an error) and the transfer attack (to craft with a registered attack)
# need the catalogue; they cannot import this module, which imports them, so it is handed to them here.
Attack.catalogue = MappingProxyType(_ATTACKS)


def available_attacks() -> list[str]:
    return sorted(_ATTACKS)


def _attack_class(name: str) -> type[Attack]:
    try:
        return _ATTACKS[name]
    except KeyError:
        raise UnknownName("attack", name, _ATTACKS) from None


def get_attack(name: str, **params: Any) -> Attack:
    """Unknown names raise :class:`UnknownName`, unknown parameters ``TypeError``, bad values ``ValueError``."""
    return _attack_class(name)(**params)


def describe_attack(name: str) -> dict[str, Any]:
    """One attack as a JSON-ready dict: what it sees, its norm and budget, and each parameter's default/range."""
    cls = _attack_class(name)
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
