"""Science-mode grouping and counting: Wilson intervals against scipy's binomtest(...).proportion_ci(method="wilson"),
groups sorted by bucket, group-key parsing, confusion matrices."""

from __future__ import annotations

import pytest

from app.stats import science
from app.stats.intervals import wilson_interval
from tests.stats.builders import trial


@pytest.mark.parametrize("n", [1, 2, 5, 10, 37, 100, 1000])
def test_wilson_matches_scipy(n: int) -> None:
    from scipy import stats  # the dev extra (test-only), which `make test` installs

    for successes in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        if not 0 <= successes <= n:
            continue
        reference = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
        low, high = wilson_interval(successes, n)
        assert low == pytest.approx(reference.low, abs=1e-12), (successes, n)
        assert high == pytest.approx(reference.high, abs=1e-12), (successes, n)


def test_grouping_sorts_buckets_by_size_and_counts_each_trial_once() -> None:
    trials = [
        trial("a", None, True, eps=16 / 255),
        trial("a", None, False, eps=4 / 255),
        trial("b", None, True, model_right=True, eps=4 / 255),
        trial("b", None, True, eps=1.0, norm="l2"),
    ]
    groups = science.group_stats(trials, ("eps_bucket",), resamples=50)
    assert [g.keys["eps_bucket"] for g in groups] == ["l2:1.0", "linf:4/255", "linf:16/255"]
    four = groups[1]
    assert (four.n, four.human_correct, four.model_correct) == (2, 1, 1)
    assert four.human_ci == wilson_interval(1, 2)
    assert [g.n for g in science.group_stats(trials, ())] == [4]
    assert science.group_stats([], ()) == []


def test_group_by_parsing() -> None:
    assert science.parse_group_by(None) == science.DEFAULT_GROUP_BY
    assert science.parse_group_by("") == ()
    assert science.parse_group_by(" attack , pack") == ("attack", "pack")
    for bad in ("colour", "attack,attack"):
        with pytest.raises(ValueError, match="condition, eps_bucket, attack, opponent, pack, event"):
            science.parse_group_by(bad)


def test_confusion_matrices_count_truth_by_answer() -> None:
    trials = [trial("a", None, True), trial("b", None, False), trial("c", None, False, model_right=True)]
    matrices = science.confusion_matrices(trials, {"fashion": 3})
    assert matrices.human["fashion"] == [[1, 2, 0], [0, 0, 0], [0, 0, 0]]
    assert matrices.model["fashion"] == [[1, 0, 2], [0, 0, 0], [0, 0, 0]]
