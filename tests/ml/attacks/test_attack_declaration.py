"""How an attack is declared: keywords in its class header, and its plain words in app/ml/attacks/explanations.toml
(one table per registered attack, none left over, shipped in the wheel)."""

from __future__ import annotations

import tomllib

import pytest

from app.config import PROJECT_ROOT
from app.ml.attacks import Attack, AttackParams, available_attacks, describe_attacks
from app.ml.attacks.queries import QueryAttack
from app.ml.attacks.texts import ATTACK_TEXTS, EXPLANATIONS_FILE


def test_every_registered_attack_has_its_text_and_the_file_has_no_orphan() -> None:
    assert sorted(ATTACK_TEXTS) == available_attacks()
    for name, texts in ATTACK_TEXTS.items():
        assert set(texts) <= {"explanation", "budget"}, name
        assert texts["explanation"].strip() == texts["explanation"] != "", name


def test_the_registry_describes_each_attack_in_the_words_of_the_file() -> None:
    for entry in describe_attacks():
        texts = ATTACK_TEXTS[entry["name"]]
        assert entry["explanation"] == texts["explanation"]
        assert entry["budget"] == texts.get("budget", entry["budget"])


def test_the_file_is_package_data_so_an_installed_wheel_carries_it() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert EXPLANATIONS_FILE.name in pyproject["tool"]["setuptools"]["package-data"]["app.ml.attacks"]


def test_an_attack_declared_without_its_text_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(LookupError, match="no-such-attack"):

        class Unexplained(Attack, name="no-such-attack", params=AttackParams):
            def run(self, model, batch):  # type: ignore[no-untyped-def]
                raise NotImplementedError


def test_a_query_attack_must_answer_scores_or_decisions() -> None:
    with pytest.raises(TypeError, match="'score' or 'decision'"):

        class Peeking(QueryAttack, threat_model="white-box"):
            def attack(self, oracle, batch):  # type: ignore[no-untyped-def]
                raise NotImplementedError
