"""The plain words of the attacks, from explanations.toml: each attack's paragraph for the reveal and the meaning of
its eps budget. Prose is kept out of the code so that it can be edited as text, and it is read once, at import."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib.resources import files
from types import MappingProxyType

EXPLANATIONS_FILE = files("app.ml.attacks") / "explanations.toml"

_texts = tomllib.loads(EXPLANATIONS_FILE.read_text(encoding="utf-8"))

DEFAULT_BUDGET: str = _texts["default_budget"]
# Attack name -> {"explanation": ..., and "budget": ... where the attack does not keep its parent class's}.
ATTACK_TEXTS: Mapping[str, Mapping[str, str]] = MappingProxyType(_texts["attacks"])
