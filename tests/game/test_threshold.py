"""The staircase threshold estimate: reversals worked out by hand."""

from __future__ import annotations

import pytest

from app.game import threshold


def test_reversals_are_where_the_run_of_answers_turns() -> None:
    trials = [(0.02, True), (0.03, True), (0.04, False), (0.03, False), (0.02, True), (0.03, False), (0.02, True)]
    assert threshold.reversal_budgets(trials) == [0.04, 0.02, 0.03, 0.02]
    found = threshold.estimate("fashion-cnn", trials, model_eps=6 / 255)
    # the first reversal still carries the start; the mean of the other three is (0.02 + 0.03 + 0.02) / 3
    assert found.reversals == 4 and found.eps == pytest.approx(0.07 / 3)
    assert found.spread == pytest.approx(0.005773502691896258)
    assert found.model_eps_text == "6/255" and found.eps_text == "6/255"


def test_no_estimate_before_enough_reversals() -> None:
    found = threshold.estimate("fashion-cnn", [(0.02, True), (0.03, False), (0.02, True)], model_eps=0.02)
    assert found.reversals == 2 and found.eps is None and found.eps_text is None and found.spread is None
    assert threshold.estimate("fashion-cnn", [], model_eps=0.02).rounds == 0
