"""Game rules without HTTP or torch: staircase, scoring, nicknames, images."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import messages
from app.errors import Invalid
from app.game.difficulty import Staircase, eps_as_grey_levels
from app.game.players import validate_nickname
from app.game.scoring import score_answer
from app.images import amplified_perturbation, from_png, to_png


def test_staircase_starts_at_min_eps_and_grows_geometrically() -> None:
    stairs = Staircase.from_min_eps(8 / 255)
    assert stairs.levels[0] == pytest.approx(8 / 255)
    assert all(b > a for a, b in zip(stairs.levels, stairs.levels[1:], strict=False))
    assert stairs.levels[-1] <= 0.3 + 1e-9
    assert all(round(level * 255) == pytest.approx(level * 255) for level in stairs.levels), "whole grey levels"


@given(st.integers(min_value=1, max_value=76), st.lists(st.booleans(), max_size=40))
def test_staircase_walk_stays_in_range(min_grey: int, answers: list[bool]) -> None:
    stairs = Staircase.from_min_eps(min_grey / 255)
    level = 0
    for correct in answers:
        after = stairs.next_level(level, correct=correct)
        assert after == min(level + 1, stairs.top) if correct else after == max(level - 1, 0)
        level = after
        assert stairs.levels[0] <= stairs.eps(level) <= stairs.levels[-1]


def test_staircase_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Staircase.from_min_eps(0)
    with pytest.raises(ValueError):
        Staircase.from_min_eps(0.5)


def test_eps_text() -> None:
    assert eps_as_grey_levels(8 / 255) == "8/255"
    assert eps_as_grey_levels(0.1) == "26/255"


def test_scoring() -> None:
    assert score_answer(correct=False, model_correct=False, streak_before=5).points == 0
    assert score_answer(correct=False, model_correct=True, streak_before=5).streak == 0
    plain = score_answer(correct=True, model_correct=True, streak_before=0)
    assert (plain.points, plain.streak, plain.beat_machine) == (1, 1, False)
    beat = score_answer(correct=True, model_correct=False, streak_before=0)
    assert (beat.points, beat.beat_machine) == (3, True)
    streak = score_answer(correct=True, model_correct=False, streak_before=2)
    assert (streak.points, streak.streak) == (4, 3)


@pytest.mark.parametrize("raw", ["", "  ", "x" * 25, "a\nb", "\x00", None, 5])
def test_bad_nicknames(raw: object) -> None:
    with pytest.raises(Invalid) as error:
        validate_nickname(raw)
    assert error.value.message == messages.NICKNAME_INVALID


def test_good_nicknames_are_trimmed_not_rewritten() -> None:
    assert validate_nickname("  <b>Bo</b> ") == "<b>Bo</b>"
    assert validate_nickname("ü" * 24) == "ü" * 24


def test_png_roundtrip_and_amplified_perturbation() -> None:
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
    delta = rng.integers(-3, 4, size=(28, 28))
    adversarial = np.clip(clean.astype(int) + delta, 0, 255).astype(np.uint8)
    assert np.array_equal(from_png(to_png(adversarial)), adversarial)
    amplified = amplified_perturbation(clean, adversarial)
    real = adversarial.astype(int) - clean.astype(int)
    assert amplified.dtype == np.uint8
    assert amplified[real == 0].tolist() == [128] * int((real == 0).sum())
    assert amplified.max() == 255 or amplified.min() == 1
    assert np.all((amplified > 128) == (real > 0))
    assert np.array_equal(amplified_perturbation(clean, clean), np.full_like(clean, 128))
    with pytest.raises(ValueError):
        to_png(clean.astype(np.float32))
