"""The vectorised bootstrap (app/stats/consistency.py, draws in app/stats/intervals.py) against the loop it replaced
(tests/stats/reference_bootstrap.py): the same point estimates exactly, the same intervals within Monte-Carlo error
(the two draw different resamples from the same seed), and deterministic from its seed."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from app.stats import consistency
from app.stats.intervals import below_index, resample_words, word_indices
from app.stats.trials import Trial
from tests.stats import reference_bootstrap as reference
from tests.stats.builders import trial


def room(seed: int, people: int, images: int, answered: float = 0.85) -> list[Trial]:
    """Own-pace trials of ``people`` people plus a together event over ``images`` images."""
    rng = random.Random(seed)
    out = []
    for p in range(people):
        skill = rng.uniform(0.4, 0.9)
        for j in range(images):
            if rng.random() < answered:
                hard = j % 3 == 0
                out.append(trial(f"p{p:03d}", f"s{j:03d}", rng.random() < skill - 0.3 * hard, model_right=not hard))
        for k in range(rng.randrange(3, 12)):
            out.append(
                trial(f"p{p:03d}", None, rng.random() < skill, model_right=rng.random() < 0.5, answer_id=f"o{p}-{k}")
            )
    return out


def assert_close_intervals(new: tuple[float, float] | None, old: tuple[float, float] | None) -> None:
    """Two 1000-resample percentile intervals of one statistic: each end's Monte-Carlo error is about 0.085 of the
    bootstrap's standard deviation (width / 3.92), the difference of two about 0.12; allow 4 of those."""
    assert new is not None and old is not None
    sd = (old[1] - old[0]) / 3.92
    assert sd > 0
    for a, b in zip(new, old, strict=True):
        assert abs(a - b) <= 0.5 * sd, (new, old)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vectorised_equals_the_reference_within_monte_carlo_error(seed: int) -> None:
    trials = room(seed, people=12 + 4 * seed, images=25)
    for name in ("people_vs_model", "each_person_vs_model", "people_vs_people"):
        new, old = getattr(consistency, name)(trials), getattr(reference, name)(trials)
        assert new is not None and old is not None
        assert new.kappa == old.kappa and new.trials == old.trials  # the estimate itself is not resampled
        assert new.pairs == old.pairs and new.people == old.people
        assert_close_intervals(new.ci, old.ci)
        assert new.ci != old.ci  # a different stream of draws, not the old code under a new name


@pytest.mark.parametrize("cells", [(30, 12, 8, 50), (400, 90, 60, 450), (5, 1, 1, 3), (2000, 10, 700, 300)])
def test_kappa_cells_interval_within_monte_carlo_error(cells: tuple[int, int, int, int]) -> None:
    assert_close_intervals(consistency.bootstrap_kappa_cells(cells), reference.bootstrap_kappa_cells(cells))


def test_deterministic_from_its_seed() -> None:
    trials = room(4, people=10, images=20)
    for name in ("people_vs_model", "each_person_vs_model", "people_vs_people"):
        function = getattr(consistency, name)
        first, again, other = function(trials), function(trials), function(trials, seed=7)
        assert first.ci == again.ci
        assert other.ci != first.ci and other.kappa == first.kappa


def test_resample_words_are_the_getrandbits_stream_recompute_reads() -> None:
    rng, mirror = random.Random(9), random.Random(9)
    words = resample_words(rng, 5, 3)
    expected = [struct.unpack("<5I", mirror.getrandbits(160).to_bytes(20, "little")) for _ in range(3)]
    assert words.tolist() == [list(row) for row in expected]
    assert rng.random() == mirror.random()  # both generators consumed exactly the same


def test_word_indices_and_their_bounds_agree_exactly() -> None:
    rng = random.Random(0)
    for size in (1, 2, 3, 7, 1000, 12345):
        edges = {0, 0xFFFFFFFF} | {below_index(c, size) + d for c in range(size + 1)[:50] for d in (-1, 0)}
        words = np.array(sorted({w for w in edges if 0 <= w <= 0xFFFFFFFF} | {rng.getrandbits(32) for _ in range(200)}))
        indices = word_indices(words.astype(np.uint32), size)
        assert indices.max() < size
        for count in range(min(size, 50) + 1):
            assert ((indices < count) == (words < below_index(count, size))).all()
    # Uniform: 100,000 words over 10 items, each within 5 standard deviations of 10,000.
    counts = np.bincount(word_indices(resample_words(random.Random(1), 100_000, 1)[0], 10), minlength=10)
    assert (abs(counts - 10_000) < 5 * (100_000 * 0.1 * 0.9) ** 0.5).all()


def test_pair_kappas_in_blocks_match_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    matrix = consistency.SharedMatrix.from_trials(room(5, people=9, images=14))
    weights = np.array([[random.Random(r).randrange(0, 3) for _ in matrix.images] for r in range(6)], dtype=float)
    whole = matrix.mean_pair_kappas(weights)
    monkeypatch.setattr(consistency, "CHUNK_ELEMENTS", 7)  # pairs in blocks of one or two
    blocks = matrix.mean_pair_kappas(weights)
    assert np.array_equal(whole[1], blocks[1]) and np.array_equal(whole[0], blocks[0], equal_nan=True)
