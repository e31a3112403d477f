"""How a new round is planned: the player's choices checked against what the model service offers, the budget in
each attack's norm, and the science-mode conditions."""

from __future__ import annotations

import pytest

from app.errors import Invalid
from app.game import plan
from tests.game.test_rounds import KnownImages


def test_choose_plan_defaults_checks_and_lists_the_valid_names() -> None:
    source = KnownImages()
    default = plan.RoundPlan(opponent="fashion-cnn", attack="pgd", steps=20)
    assert plan.choose_plan(source, default=default) == default
    assert plan.choose_plan(source, default=default, attack="square").attack == "square"
    # An opponent without gradients never gets a white-box attack: the default falls back to transfer.
    assert plan.choose_plan(source, default=default, opponent="fashion-forest").attack == "transfer"
    with pytest.raises(Invalid) as refused:
        plan.choose_plan(source, default=default, opponent="fashion-forest", attack="pgd")
    assert "square, transfer" in refused.value.message and "pgd" in refused.value.message
    with pytest.raises(Invalid) as unknown:
        plan.choose_plan(source, default=default, opponent="resnet-9000")
    assert "fashion-cnn, fashion-forest" in unknown.value.message


def test_budgets_follow_the_attack_norm() -> None:
    info = KnownImages().opponent_info("fashion-cnn")
    assert plan.round_budget("linf", 0.1, info) == 0.1
    assert plan.round_budget("l2", 0.1, info) == pytest.approx(0.1 * 28 / 2)
    assert plan.round_budget("l0", 0.1, info) == 1.0


def test_conditions_are_drawn_into_the_plan_and_transfer_needs_a_surrogate() -> None:
    source = KnownImages()
    default = plan.RoundPlan(opponent="fashion-cnn", attack="pgd", steps=20)
    clean = plan.choose_plan(source, default=default, mix={"clean": 1.0})
    assert (clean.condition, clean.attack) == ("clean", "pgd"), "the attack is kept so the round can be rebuilt"
    # fashion-cnn has no other model with gradients to be crafted on: a transfer draw plays adversarial instead
    assert plan.choose_plan(source, default=default, mix={"transfer": 1.0}).condition == "adversarial"
    on_forest = plan.choose_plan(source, default=default, opponent="fashion-forest", mix={"transfer": 1.0})
    assert (on_forest.condition, on_forest.attack, on_forest.surrogate) == ("transfer", "transfer", "fashion-cnn")
    assert on_forest.attack_params() == {"steps": 20, "surrogate": "fashion-cnn"}
    chosen = plan.choose_plan(source, default=default, opponent="fashion-forest", attack="transfer")
    assert chosen.surrogate == "fashion-cnn", "a chosen transfer attack is crafted on another model"
    with pytest.raises(Invalid, match="No other model"):
        plan.choose_plan(source, default=default, opponent="fashion-cnn", attack="transfer")
    job = plan.new_job(clean, source.opponent_info("fashion-cnn"), 0.1)
    assert job.condition == "clean" and job.batch_key[-1] == "clean"
