"""The cloak itself: it changes the model's label while no pixel moves by more than the chosen budget, measured on
the 8-bit image that is delivered."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.imagenet import needs_imagenet, sample

pytestmark = needs_imagenet


@pytest.mark.parametrize("method", ["pgd", "cw"])
def test_the_cloak_changes_the_label_within_the_budget(engine: Any, method: str) -> None:
    photo = sample("chelsea.png", (240, 160))
    steps_seen: list[int] = []
    outcome = engine.cloak(
        photo,
        eps=2 / 255,
        steps=5,
        method=method,
        goal="untargeted",
        search=False,
        progress=lambda s, n, *_: steps_seen.append(s),
    )
    assert outcome.success
    assert outcome.after[0].index != outcome.before[0].index == outcome.source.index
    assert engine.top(engine.probabilities(outcome.cloaked), 1)[0].index == outcome.after[0].index  # re-measured
    change = np.abs(outcome.cloaked.astype(int) - photo.astype(int))
    assert 0 < change.max() <= 2 and outcome.linf == change.max() / 255
    assert outcome.cloaked.shape == photo.shape and outcome.cloaked.dtype == np.uint8
    assert steps_seen == [1, 2, 3, 4, 5]
    assert outcome.survival == () and outcome.search == () and outcome.family is None


@pytest.mark.slow
def test_a_targeted_cloak_reaches_its_class(engine: Any) -> None:
    photo = sample("coffee.png", (224, 224))
    toaster = engine.class_index("toaster")
    outcome = engine.cloak(photo, eps=8 / 255, steps=8, target=toaster, search=False, checks=False)
    assert outcome.goal == "targeted" and outcome.success and outcome.after[0].index == toaster
    assert np.abs(outcome.cloaked.astype(int) - photo.astype(int)).max() <= 8


@pytest.mark.slow
def test_eot_keeps_the_budget_and_reports_survival(engine: Any) -> None:
    photo = sample("chelsea.png", (240, 160))
    outcome = engine.cloak(photo, eps=4 / 255, steps=3, eot=True, goal="untargeted", search=False, checks=True)
    assert outcome.eot and outcome.success
    assert np.abs(outcome.cloaked.astype(int) - photo.astype(int)).max() <= 4
    jpeg = {row.check: row.goal_met for row in outcome.survival}
    assert jpeg["as delivered"] and jpeg["JPEG 95"] and jpeg["JPEG 85"], outcome.survival


def test_budgets_below_one_grey_level_are_refused(engine: Any) -> None:
    with pytest.raises(ValueError, match="one grey level"):
        engine.cloak(sample("chelsea.png", (64, 64)), eps=0.5 / 255)
