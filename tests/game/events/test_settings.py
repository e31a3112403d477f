"""The host's settings, checked against what the server can run."""

from __future__ import annotations

import pytest

from app import messages
from app.errors import Invalid
from app.game import events
from tests.game.events.records import settings


def test_eps_levels_are_whole_grey_levels() -> None:
    assert [round(e * 255) for e in settings(eps=8 / 255).eps_levels()] == [8]
    assert settings(eps=8 / 255).fixed_eps
    assert [round(e * 255) for e in settings(eps_min=4 / 255, eps_max=12 / 255).eps_levels()] == [4, 6, 8, 10, 12]
    assert [round(e * 255) for e in settings(eps_min=2 / 255, eps_max=4 / 255).eps_levels()] == [2, 3, 4]
    assert len(settings(eps_min=1 / 255, eps_max=76 / 255).eps_levels()) == 5


def test_settings_are_checked_against_the_catalog() -> None:
    with pytest.raises(Invalid, match="digits-cnn"):
        settings(phases=[{"opponent": "fashion-cnn", "attack": "pgd"}, {"opponent": "digits-cnn", "attack": "pgd"}])
    with pytest.raises(Invalid) as unknown:
        settings(phases=[{"opponent": "fashion-cnn", "attack": "square"}])
    assert "fgsm, pgd" in unknown.value.message
    with pytest.raises(Invalid):
        settings(phases=[{"opponent": "fashion-cnn", "attack": "pgd"}] * 6)
    with pytest.raises(Invalid):
        settings(time_limit_s=10)
    assert settings(rounds="7").rounds == 7 and settings(rounds="").rounds is None
    loaded = events.EventSettings.from_json(settings(style="together", rounds=3).to_json())
    assert loaded.style == "together" and loaded.rounds == 3 and loaded.phases[0].attack == "pgd"


@pytest.mark.parametrize("field", ["eps", "rounds", "round_seconds", "flash_ms", "guess_share"])
@pytest.mark.parametrize("value", ["nan", float("inf")])
def test_numbers_that_are_not_finite_are_refused_with_the_fields_message(field: str, value: object) -> None:
    expected = {
        "eps": messages.EVENT_EPS_INVALID,
        "rounds": messages.EVENT_LIMIT_INVALID,
        "round_seconds": messages.EVENT_ROUND_SECONDS_INVALID,
        "flash_ms": messages.EVENT_FLASH_INVALID,
        "guess_share": messages.EVENT_GUESS_INVALID,
    }[field]
    with pytest.raises(Invalid) as refused:
        settings(**{field: value})
    assert refused.value.message == expected


def test_the_first_field_at_fault_names_the_problem() -> None:
    with pytest.raises(Invalid) as refused:
        settings(style="sideways", rounds=0, eps=1.0)
    assert refused.value.message == messages.EVENT_EPS_INVALID
