"""Error consistency (Geirhos, Meding & Wichmann 2020) between people and the model and between pairs of people,
with its percentile-bootstrap intervals; app/stats/science.py's docstring defines every estimate and resampling."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from app.stats.trials import Trial

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 2020  # the year of Geirhos et al.'s paper; any fixed value would do
CI_QUANTILES = (0.025, 0.975)  # a 95% percentile interval; written out so recompute.py uses the very same floats


def kappa_from_counts(both_right: float, first_only: float, second_only: float, both_wrong: float) -> float | None:
    """Geirhos et al.'s error consistency from the four agreement cells of two observers' trials."""
    n = both_right + first_only + second_only + both_wrong
    if n <= 0:
        return None
    c_obs = (both_right + both_wrong) / n
    p1 = (both_right + first_only) / n
    p2 = (both_right + second_only) / n
    c_exp = p1 * p2 + (1 - p1) * (1 - p2)
    if c_exp >= 1.0:
        return None
    return (c_obs - c_exp) / (1 - c_exp)


def agreement_cells(first: Sequence[bool], second: Sequence[bool]) -> tuple[int, int, int, int]:
    if len(first) != len(second):
        raise ValueError(f"two observers need the same trials, got {len(first)} and {len(second)}")
    cells = [0, 0, 0, 0]
    for a, b in zip(first, second, strict=True):
        cells[(0 if a else 2) + (0 if b else 1)] += 1
    # index: 0 both right, 1 first right only, 2 second right only, 3 both wrong
    return cells[0], cells[1], cells[2], cells[3]


def error_consistency(first: Sequence[bool], second: Sequence[bool]) -> float | None:
    """Kappa between two observers' right/wrong on the same trials, in order."""
    return kappa_from_counts(*agreement_cells(first, second))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) with linear interpolation between order statistics (numpy's default method)."""
    if not sorted_values:
        raise ValueError("no values")
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def percentile_interval(
    values: Iterable[float], quantiles: tuple[float, float] = CI_QUANTILES
) -> tuple[float, float] | None:
    ordered = sorted(values)
    if len(ordered) < 2:
        return None
    return (percentile(ordered, quantiles[0]), percentile(ordered, quantiles[1]))


def bootstrap_kappa_cells(
    cells: tuple[int, int, int, int], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of kappa over trials: each resample draws n trials with replacement, which for
    kappa (a function of the four cells only) is a draw of n cells weighted by the observed counts."""
    n = sum(cells)
    if n == 0:
        return None
    rng = random.Random(seed)
    cum = list(accumulate(cells))
    population = (0, 1, 2, 3)
    values = []
    for _ in range(resamples):
        draw = rng.choices(population, cum_weights=cum, k=n)
        kappa = kappa_from_counts(draw.count(0), draw.count(1), draw.count(2), draw.count(3))
        if kappa is not None:
            values.append(kappa)
    return percentile_interval(values)


@dataclass(frozen=True)
class Consistency:
    """An error-consistency estimate: kappa (None when undefined), its bootstrap interval, and what it rests on."""

    kappa: float | None
    ci: tuple[float, float] | None
    trials: int
    pairs: int | None = None  # people vs people: pairs of people with a defined kappa
    people: int | None = None  # per person vs model: people with a defined kappa

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kappa": self.kappa, "ci": list(self.ci) if self.ci else None, "trials": self.trials}
        if self.pairs is not None:
            out["pairs"] = self.pairs
        if self.people is not None:
            out["people"] = self.people
        return out


def people_vs_model(trials: Sequence[Trial], *, resamples: int = BOOTSTRAP_RESAMPLES) -> Consistency:
    cells = agreement_cells([t.human_correct for t in trials], [t.model_correct for t in trials])
    kappa = kappa_from_counts(*cells)
    ci = bootstrap_kappa_cells(cells, resamples=resamples) if kappa is not None else None
    return Consistency(kappa=kappa, ci=ci, trials=len(trials))


def people_in_order(trials: Sequence[Trial]) -> list[str]:
    """The people of these trials ordered by their smallest answer id, not by their own id: the research bundle
    renames people (app/stats/bundle/pseudonyms.py) but keeps answer ids, so its recomputation resamples and sums
    people in the same order as the server, to the last bit."""
    first_answer: dict[str, str] = {}
    for trial in trials:
        known = first_answer.get(trial.player_id)
        if known is None or trial.answer_id < known:
            first_answer[trial.player_id] = trial.answer_id
    return sorted(first_answer, key=first_answer.__getitem__)


def each_person_vs_model(trials: Sequence[Trial], *, resamples: int = BOOTSTRAP_RESAMPLES) -> Consistency:
    """Geirhos et al.'s observer-by-observer form: kappa of each person against the model over that person's own
    trials, then the mean over the people for whom it is defined. The interval resamples people (in
    :func:`people_in_order`)."""
    by_person: dict[str, list[Trial]] = defaultdict(list)
    for trial in trials:
        by_person[trial.player_id].append(trial)
    kappas = []
    for person in people_in_order(trials):
        own = by_person[person]
        value = error_consistency([t.human_correct for t in own], [t.model_correct for t in own])
        if value is not None:
            kappas.append(value)
    if not kappas:
        return Consistency(kappa=None, ci=None, trials=len(trials), people=0)
    rng = random.Random(BOOTSTRAP_SEED)
    means = []
    for _ in range(resamples):
        draw = rng.choices(kappas, k=len(kappas))
        means.append(sum(draw) / len(draw))
    return Consistency(
        kappa=sum(kappas) / len(kappas), ci=percentile_interval(means), trials=len(trials), people=len(kappas)
    )


@dataclass(frozen=True)
class SharedMatrix:
    """People x together images: 1 where a person answered right, and whether they answered at all."""

    people: tuple[str, ...]
    images: tuple[str, ...]
    right: np.ndarray  # float64 (P, J), 0/1
    answered: np.ndarray  # float64 (P, J), 0/1

    @classmethod
    def from_trials(cls, trials: Sequence[Trial]) -> SharedMatrix:
        shared = [t for t in trials if t.shared_image is not None]
        people = tuple(people_in_order(shared))
        images = tuple(sorted({t.shared_image for t in shared if t.shared_image is not None}))
        row = {p: i for i, p in enumerate(people)}
        col = {s: j for j, s in enumerate(images)}
        right = np.zeros((len(people), len(images)))
        answered = np.zeros((len(people), len(images)))
        for t in shared:
            i, j = row[t.player_id], col[t.shared_image]  # type: ignore[index]
            answered[i, j] = 1.0
            right[i, j] = 1.0 if t.human_correct else 0.0
        return cls(people=people, images=images, right=right, answered=answered)

    def mean_pair_kappa(self, weights: np.ndarray) -> tuple[float | None, int]:
        """Mean over pairs of people of their kappa on the images both answered, each image counted ``weights[j]``
        times (1 for the data itself, the multiplicity in a bootstrap resample). Returns (mean, defined pairs)."""
        if len(self.people) < 2:
            return None, 0
        rw = self.right * weights
        aw = self.answered * weights
        common = aw @ self.answered.T  # trials both answered
        both_right = rw @ self.right.T
        first_right = rw @ self.answered.T  # the row person right, on images both answered
        second_right = first_right.T
        upper = np.triu(np.ones_like(common, dtype=bool), k=1) & (common > 0)
        n = common[upper]
        br, fr, sr = both_right[upper], first_right[upper], second_right[upper]
        c_obs = (br + (n - fr - sr + br)) / n
        p1, p2 = fr / n, sr / n
        c_exp = p1 * p2 + (1 - p1) * (1 - p2)
        defined = c_exp < 1.0
        if not defined.any():
            return None, 0
        kappas = (c_obs[defined] - c_exp[defined]) / (1 - c_exp[defined])
        return float(sum(kappas.tolist()) / len(kappas)), int(defined.sum())


def people_vs_people(trials: Sequence[Trial], *, resamples: int = BOOTSTRAP_RESAMPLES) -> Consistency | None:
    """Mean pairwise error consistency between people on together images; None when no together image has two
    answers in these trials."""
    matrix = SharedMatrix.from_trials(trials)
    if len(matrix.people) < 2 or not matrix.images:
        return None
    ones = np.ones(len(matrix.images))
    kappa, pairs = matrix.mean_pair_kappa(ones)
    if pairs == 0:
        return Consistency(kappa=None, ci=None, trials=len(matrix.images), pairs=0)
    rng = random.Random(BOOTSTRAP_SEED)
    count = len(matrix.images)
    population = range(count)
    values = []
    for _ in range(resamples):
        weights = np.zeros(count)
        for j in rng.choices(population, k=count):
            weights[j] += 1.0
        value, _ = matrix.mean_pair_kappa(weights)
        if value is not None:
            values.append(value)
    return Consistency(kappa=kappa, ci=percentile_interval(values), trials=count, pairs=pairs)
