"""Agreement between people per item (app/stats/agreement.py): Fleiss' kappa against the worked example of Fleiss
(1971) as Wikipedia reproduces it, pairwise agreement, per-item accuracy and the bootstrap intervals."""

from __future__ import annotations

from collections import Counter

import pytest

from app.stats.agreement import agreement, fleiss, pair_share

# Wikipedia, "Fleiss' kappa", worked example: 10 items, 14 raters each, 5 categories. P̄ = 0.378, κ = 0.210.
TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def triples(truth: int = 2) -> list[tuple[int, int, int]]:
    return [
        (item, category, truth) for item, row in enumerate(TABLE) for category, n in enumerate(row) for _ in range(n)
    ]


def test_fleiss_kappa_matches_the_worked_example() -> None:
    p_bar, kappa = fleiss([Counter(dict(enumerate(row))) for row in TABLE])
    assert p_bar == pytest.approx(0.378, abs=5e-4)
    assert kappa == pytest.approx(0.210, abs=5e-4)
    found = agreement(triples())
    assert found.pairwise == pytest.approx(p_bar) and found.kappa == pytest.approx(kappa)
    assert found.answers == 140
    assert found.kappa_ci95 is not None and found.kappa_ci95[0] < kappa < found.kappa_ci95[1]
    assert found.pairwise_ci95 is not None and found.pairwise_ci95[0] < p_bar < found.pairwise_ci95[1]
    assert agreement(triples()) == found, "the bootstrap is seeded"


def test_per_item_accuracy_mode_and_pairs() -> None:
    found = agreement(triples(truth=2))
    first, second = found.items[0], found.items[1]
    assert (first.accuracy.successes, first.accuracy.n) == (0, 14) and first.modal_answer == 4
    assert first.pairwise == 1.0 and first.modal_share == 1.0
    assert (second.accuracy.successes, second.accuracy.n) == (6, 14) and second.modal_answer == 2
    assert second.pairwise == pytest.approx((2 * 1 + 6 * 5 + 4 * 3 + 2 * 1) / (14 * 13))


def test_items_with_one_answer_have_no_pairs_and_uniform_answers_have_no_kappa() -> None:
    assert pair_share(Counter({3: 1})) is None
    lone = agreement([(1, 3, 3), (2, 4, 3), (2, 4, 3)])
    assert lone.items[0].pairwise is None and lone.items[1].pairwise == 1.0
    assert lone.pairwise == 1.0 and lone.kappa is None, "one answer everywhere: chance agreement is 1"
    assert agreement([]).pairwise is None and agreement([]).items == ()
