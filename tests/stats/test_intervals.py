"""Wilson 95% intervals against values worked by hand, and against statsmodels' proportion_confint(method="wilson")."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from app.stats.intervals import Z_95, wilson_interval


def test_seven_of_ten_matches_the_worked_values() -> None:
    low, high = wilson_interval(7, 10)
    assert low == pytest.approx(0.3968, abs=5e-5)
    assert high == pytest.approx(0.8922, abs=5e-5)


def test_the_ends_stay_inside_zero_and_one() -> None:
    # 0 of n: the upper bound is z²/(n+z²), worked by hand: 3.8415 / 13.8415 = 0.2775 for n = 10.
    assert wilson_interval(0, 10) == (0.0, pytest.approx(Z_95**2 / (10 + Z_95**2)))
    assert wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=5e-5)
    assert wilson_interval(10, 10) == (pytest.approx(10 / (10 + Z_95**2)), 1.0)
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=5e-5)


@pytest.mark.parametrize("n", [1, 2, 7, 10, 33, 100, 1000])
@pytest.mark.parametrize("z", [Z_95, 1.0, 2.576])
def test_every_count_matches_statsmodels(n: int, z: float) -> None:
    alpha = 2 * (1 - norm.cdf(z))
    for successes in range(n + 1):
        expected = proportion_confint(successes, n, alpha=alpha, method="wilson")
        assert wilson_interval(successes, n, z=z) == pytest.approx(expected, abs=1e-9), (successes, n, z)


def test_no_answers_means_nothing_is_known() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_half_is_symmetric_and_narrows_with_n() -> None:
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(1 - high)
    assert low == pytest.approx(0.4038, abs=5e-5)
    wide = wilson_interval(5, 10)
    assert wide[1] - wide[0] > high - low


def test_a_wider_z_gives_a_wider_interval() -> None:
    narrow, wide = wilson_interval(3, 10, z=1.0), wilson_interval(3, 10, z=2.576)
    assert wide[0] < narrow[0] < 0.3 < narrow[1] < wide[1]
    # Closed form with z = 1, worked by hand: centre (0.3 + 0.05) / 1.1, half sqrt(0.021 + 0.0025) / 1.1
    assert narrow[0] == pytest.approx((0.35 - math.sqrt(0.0235)) / 1.1)


@pytest.mark.parametrize(("successes", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_impossible_counts_are_refused(successes: int, n: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(successes, n)
