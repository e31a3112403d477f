"""What the reveal says: the budget in words people can picture."""

from __future__ import annotations

from app.game import reveal


def test_budgets_are_told_in_the_attack_norm() -> None:
    assert reveal.budget_text("linf", 6 / 255, {}) == "6/255"
    assert reveal.budget_text("l2", 1.4, {}) == "L2 size 1.40"
    assert reveal.budget_text("l0", 1.0, {"pixels": 3}) == "3 pixels"
