"""Compute units per (opponent, attack, steps): app/ml/service/cost.py, from the benchmark figures it cites."""

from __future__ import annotations

import pytest

from app.ml.attacks import describe_attacks
from app.ml.service.admission import DEFAULT_GLOBAL_UNITS, DEFAULT_PER_CLIENT_UNITS
from app.ml.service.contracts import ImageJob
from app.ml.service.cost import ATTACK_COSTS, UNKNOWN_ATTACK, job_units


def units(attack: str, opponent: str = "fashion-cnn", condition: str = "adversarial", **params: object) -> float:
    job = ImageJob(opponent, attack, ImageJob.freeze_params(params), 0, 0.05, 0, condition=condition)
    return job_units(job)


def test_the_default_round_is_twenty_units_and_work_grows_with_steps_and_queries() -> None:
    assert units("pgd", steps=20) == pytest.approx(20.0)
    assert units("pgd") == pytest.approx(20.0), "a job without steps runs the attack's default of 20"
    assert units("pgd", steps=40) == pytest.approx(2 * units("pgd", steps=20))
    assert units("hopskipjump", max_queries=500) == pytest.approx(173.2)
    assert units("hopskipjump") == pytest.approx(2 * 173.2), "the attack's default is 1,000 queries"
    assert units("cw", steps=60, binary_search_steps=3) == pytest.approx(29.8)


def test_opponents_scale_the_work_and_cheap_ones_are_never_charged_less_than_the_cnn() -> None:
    assert units("hopskipjump", "fashion-defgan", max_queries=500) == pytest.approx(173.2 * 8.90)
    assert units("pgd", "fashion-defgan") == pytest.approx(20 * 4.39)
    assert units("pgd", "fashion-logreg") == units("pgd", "fashion-cnn")
    assert units("pgd", "imagenet-unmeasured") > units("pgd", "fashion-cnn")


def test_conditions_without_an_attack_and_unknown_attacks() -> None:
    assert units("hopskipjump", condition="clean") == units("fgsm")
    assert units("no-such-attack") == UNKNOWN_ATTACK.units


def test_every_registered_attack_has_measured_units() -> None:
    assert {entry["name"] for entry in describe_attacks()} <= set(ATTACK_COSTS)


def test_the_defaults_let_200_players_each_have_one_default_round_in_flight() -> None:
    assert DEFAULT_GLOBAL_UNITS >= 200 * units("pgd")
    assert DEFAULT_PER_CLIENT_UNITS >= units("pgd")
