"""Error consistency against values computed independently: hand-worked cases, exact fractions and Cohen's kappa
computed from the 2x2 right/wrong contingency table; percentiles against numpy; the bootstrap's seeding."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest

from app.stats.consistency import (
    SharedMatrix,
    bootstrap_kappa_cells,
    each_person_vs_model,
    error_consistency,
    kappa_from_counts,
    people_vs_people,
    percentile,
)
from tests.stats.builders import trial


def exact_kappa(first: list[int], second: list[int]) -> Fraction | None:
    """Geirhos et al.'s definition, in exact fractions."""
    n = len(first)
    c_obs = Fraction(sum(a == b for a, b in zip(first, second, strict=True)), n)
    p1, p2 = Fraction(sum(first), n), Fraction(sum(second), n)
    c_exp = p1 * p2 + (1 - p1) * (1 - p2)
    return None if c_exp == 1 else (c_obs - c_exp) / (1 - c_exp)


def cohen_kappa_2x2(first: list[int], second: list[int]) -> float:
    """Cohen's kappa over the two categories right/wrong, from the contingency table and its margins."""
    table = np.zeros((2, 2))
    for a, b in zip(first, second, strict=True):
        table[a, b] += 1
    n = table.sum()
    observed = np.trace(table) / n
    expected = float((table.sum(axis=1) * table.sum(axis=0)).sum()) / n**2
    return float((observed - expected) / (1 - expected))


def test_error_consistency_hand_worked() -> None:
    # 10 trials: both right 4, first only 2, second only 1, both wrong 3.
    first = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    second = [1, 1, 1, 1, 0, 0, 1, 0, 0, 0]
    # c_obs = 7/10, p1 = 6/10, p2 = 5/10, c_exp = 0.3 + 0.2 = 0.5, kappa = (0.7 - 0.5) / 0.5 = 0.4
    assert error_consistency([bool(x) for x in first], [bool(x) for x in second]) == pytest.approx(0.4)
    # The same trials in another order give the same kappa; perfect agreement is 1, perfect disagreement at
    # 50% accuracy each is -1.
    assert error_consistency([True, False] * 3, [True, False] * 3) == pytest.approx(1.0)
    assert error_consistency([True, False] * 3, [False, True] * 3) == pytest.approx(-1.0)
    # Independent observers: agreement exactly at chance is 0. p1 = p2 = 1/2, c_obs = 1/2.
    assert error_consistency([True, True, False, False], [True, False, True, False]) == pytest.approx(0.0)


def test_error_consistency_is_undefined_when_chance_explains_everything() -> None:
    assert error_consistency([True] * 5, [True] * 5) is None
    assert error_consistency([False] * 5, [False] * 5) is None
    assert error_consistency([], []) is None
    # One observer always right: c_exp = p2 = c_obs, so kappa is 0, not undefined.
    assert error_consistency([True] * 4, [True, False, True, False]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        error_consistency([True], [True, False])


def test_error_consistency_matches_exact_fractions_and_cohen_on_random_trials() -> None:
    rng = random.Random(3)
    for _ in range(200):
        n = rng.randrange(2, 60)
        first = [int(rng.random() < 0.7) for _ in range(n)]
        second = [a if rng.random() < 0.5 else int(rng.random() < 0.4) for a in first]
        expected = exact_kappa(first, second)
        got = error_consistency([bool(x) for x in first], [bool(x) for x in second])
        if expected is None:
            assert got is None
            continue
        assert got == pytest.approx(float(expected), abs=1e-12)
        assert got == pytest.approx(cohen_kappa_2x2(first, second), abs=1e-12)


def test_percentile_matches_numpy() -> None:
    rng = random.Random(5)
    for size in (2, 3, 10, 999):
        values = sorted(rng.uniform(-1, 1) for _ in range(size))
        for q in (0.0, 0.025, 0.5, 0.975, 1.0):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q * 100)), abs=1e-12)


def test_bootstrap_interval_is_seeded_and_brackets_kappa() -> None:
    cells = (30, 12, 8, 50)
    first = bootstrap_kappa_cells(cells)
    assert first == bootstrap_kappa_cells(cells)  # fixed seed: the same interval every time
    kappa = kappa_from_counts(*cells)
    assert first is not None and kappa is not None and first[0] < kappa < first[1]
    # More trials with the same proportions: a narrower interval.
    wide, narrow = bootstrap_kappa_cells((6, 2, 2, 10)), bootstrap_kappa_cells((60, 20, 20, 100))
    assert wide is not None and narrow is not None and narrow[1] - narrow[0] < wide[1] - wide[0]
    # No trials, no interval.
    assert bootstrap_kappa_cells((0, 0, 0, 0)) is None


ROOM = {  # person -> right/wrong on images s1, s2, s3 (the API test's event)
    "p0": [1, 0, 1],
    "p1": [1, 1, 0],
    "p2": [0, 0, 1],
    "p3": [1, 0, 1],
}


def test_people_vs_people_mean_of_pairwise_kappas_hand_worked() -> None:
    trials = [trial(p, f"s{j + 1}", bool(r)) for p, row in ROOM.items() for j, r in enumerate(row)]
    # By hand: (p0,p1) c_obs 1/3, c_exp 5/9 -> -0.5; (p0,p2) 2/3 vs 4/9 -> 0.4; (p0,p3) identical -> 1;
    # (p1,p2) 0 vs 4/9 -> -0.8; (p1,p3) -> -0.5; (p2,p3) -> 0.4. Mean 0.
    pairs = {(a, b): exact_kappa(ROOM[a], ROOM[b]) for i, a in enumerate(ROOM) for b in list(ROOM)[i + 1 :]}
    assert [float(k) for k in pairs.values() if k is not None] == [-0.5, 0.4, 1.0, -0.8, -0.5, 0.4]
    result = people_vs_people(trials)
    assert result is not None and result.pairs == 6 and result.trials == 3
    assert result.kappa == pytest.approx(0.0, abs=1e-12)
    assert result.ci is not None and result.ci[0] <= result.ci[1]


def test_people_vs_people_uses_only_the_images_both_answered() -> None:
    # p0 and p1 share s1..s4; p2 answered only s5, which nobody else saw: no pair with p2.
    grid = {"p0": [1, 1, 0, 0], "p1": [1, 0, 0, 1]}
    trials = [trial(p, f"s{j}", bool(r)) for p, row in grid.items() for j, r in enumerate(row)]
    trials.append(trial("p2", "s9", True))
    result = people_vs_people(trials)
    assert result is not None and result.pairs == 1
    assert result.kappa == pytest.approx(float(exact_kappa(grid["p0"], grid["p1"])))
    # Own-pace trials (no shared image) have no people-vs-people consistency at all.
    assert people_vs_people([trial("p0", None, True), trial("p1", None, False)]) is None


def test_the_vectorised_pair_kappas_match_a_plain_loop_under_resampling() -> None:
    rng = random.Random(11)
    trials = [
        trial(f"p{p}", f"s{j:02d}", rng.random() < 0.6)
        for p in range(7)
        for j in range(15)
        if rng.random() < 0.8  # not everyone answers every image
    ]
    matrix = SharedMatrix.from_trials(trials)
    weights = np.array([rng.randrange(0, 3) for _ in matrix.images], dtype=float)
    answers = {(t.player_id, t.shared_image): t.human_correct for t in trials}
    kappas = []
    for i, a in enumerate(matrix.people):
        for b in matrix.people[i + 1 :]:
            first, second = [], []
            for j, image in enumerate(matrix.images):
                if (a, image) in answers and (b, image) in answers:
                    first += [answers[a, image]] * int(weights[j])
                    second += [answers[b, image]] * int(weights[j])
            if first:
                value = error_consistency(first, second)
                if value is not None:
                    kappas.append(value)
    mean, pairs = matrix.mean_pair_kappa(weights)
    assert pairs == len(kappas) and mean == pytest.approx(sum(kappas) / len(kappas), abs=1e-12)


def test_each_person_vs_model_is_the_mean_of_per_person_kappas() -> None:
    model = [0, 0, 1]
    trials = [
        trial(p, f"s{j + 1}", bool(r), model_right=bool(model[j])) for p, row in ROOM.items() for j, r in enumerate(row)
    ]
    expected = [float(exact_kappa(row, model)) for row in ROOM.values()]  # type: ignore[arg-type]
    assert expected == [0.4, -0.8, 1.0, 0.4]
    result = each_person_vs_model(trials)
    assert result.people == 4 and result.kappa == pytest.approx(0.25)
    assert result.ci is not None and result.ci[0] <= 0.25 <= result.ci[1]
    # A person always right against a model always right has no defined kappa and is left out of the mean.
    alone = [trial("x", None, True, model_right=True), trial("y", None, True), trial("y", None, False)]
    only_y = each_person_vs_model(alone)
    assert only_y.people == 1 and only_y.kappa == pytest.approx(float(exact_kappa([1, 0], [0, 0])))  # type: ignore[arg-type]
