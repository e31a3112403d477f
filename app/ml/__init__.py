"""The ML layer: data packs, opponents (classifiers), attacks, training and measurement.

This is the only package that imports torch. Its public names load lazily (PEP 562), so that importing a
torch-free module such as :mod:`app.ml.service.contracts` or :mod:`app.ml.packs` from the web tier does not pull torch
in. It deliberately does not import the model service, so that scripts, tests and the trainer can use
opponents and attacks without starting worker threads.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.ml.attacks import Attack, AttackResult, available_attacks, get_attack
    from app.ml.errors import UnknownName
    from app.ml.model import ArenaModel
    from app.ml.opponents.registry import OpponentCorrupt, OpponentMissing, load_opponent
    from app.ml.opponents.specs import available_opponents, opponent_pack
    from app.ml.packs import DataPack, DataPackCorrupt, DataPackMissing, available_packs, get_pack

_EXPORTS = {
    "Attack": "app.ml.attacks",
    "AttackResult": "app.ml.attacks",
    "available_attacks": "app.ml.attacks",
    "get_attack": "app.ml.attacks",
    "ArenaModel": "app.ml.model",
    "OpponentCorrupt": "app.ml.opponents.registry",
    "OpponentMissing": "app.ml.opponents.registry",
    "available_opponents": "app.ml.opponents.specs",
    "load_opponent": "app.ml.opponents.registry",
    "opponent_pack": "app.ml.opponents.specs",
    "DataPack": "app.ml.packs",
    "DataPackCorrupt": "app.ml.packs",
    "DataPackMissing": "app.ml.packs",
    "available_packs": "app.ml.packs",
    "get_pack": "app.ml.packs",
    "UnknownName": "app.ml.errors",
}

# Spelled out (not sorted(_EXPORTS)) so linters and type checkers see the re-exports; the test suite checks
# that the two agree.
__all__ = [
    "ArenaModel",
    "Attack",
    "AttackResult",
    "DataPack",
    "DataPackCorrupt",
    "DataPackMissing",
    "OpponentCorrupt",
    "OpponentMissing",
    "UnknownName",
    "available_attacks",
    "available_opponents",
    "available_packs",
    "get_attack",
    "get_pack",
    "load_opponent",
    "opponent_pack",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'app.ml' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
