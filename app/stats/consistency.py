"""Error consistency (Geirhos, Meding & Wichmann 2020) between people and the model and between pairs of people,
with its percentile-bootstrap intervals; app/stats/science.py's docstring defines every estimate and resampling."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from app.stats.intervals import below_index, resample_words, word_indices
from app.stats.trials import Trial

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 2020  # the year of Geirhos et al.'s paper; any fixed value would do
CHUNK_ELEMENTS = 1 << 20  # numbers held at once per resampling step: a few MB, whatever the group's size
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


def kappa_arrays(
    both_right: np.ndarray, first_only: np.ndarray, second_only: np.ndarray, both_wrong: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`kappa_from_counts` over arrays of cells, the same float operations in the same order (so the same
    bits): (kappa, 0.0 where undefined; where it is defined)."""
    n = both_right + first_only + second_only + both_wrong
    safe_n = np.where(n > 0, n, 1.0)
    c_obs = (both_right + both_wrong) / safe_n
    p1 = (both_right + first_only) / safe_n
    p2 = (both_right + second_only) / safe_n
    c_exp = p1 * p2 + (1 - p1) * (1 - p2)
    defined = (n > 0) & (c_exp < 1.0)
    kappa = np.where(defined, (c_obs - c_exp) / np.where(defined, 1 - c_exp, 1.0), 0.0)
    return kappa, defined


def resample_chunks(resamples: int, per_resample: int) -> list[int]:
    """Resamples split into chunks of about CHUNK_ELEMENTS numbers each (bounded memory, whatever the group)."""
    size = max(1, CHUNK_ELEMENTS // max(1, per_resample))
    return [min(size, resamples - start) for start in range(0, resamples, size)]


def count_below(words: np.ndarray, bound: int) -> np.ndarray:
    """Per row, the words below ``bound`` (a bound past every 32-bit word counts them all)."""
    if bound > 0xFFFFFFFF:
        return np.full(words.shape[0], words.shape[1], dtype=np.int64)
    return np.count_nonzero(words < np.uint32(bound), axis=1)


def bootstrap_kappa_cells(
    cells: tuple[int, int, int, int], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of kappa over trials: each resample draws n trials with replacement. Kappa is a
    function of the four cells only, so the trials stand in cell order (all "both right" first, and so on) and a
    resample's cells are how many of its n indices fall below each cumulative count (app/stats/science.py's
    docstring has the draws)."""
    n = sum(cells)
    if n == 0 or resamples <= 0:
        return None
    rng = random.Random(seed)
    bounds = [below_index(c, n) for c in accumulate(cells[:3])]
    values: list[float] = []
    for chunk in resample_chunks(resamples, n):
        words = resample_words(rng, n, chunk)
        below = [count_below(words, bound).astype(np.float64) for bound in bounds]
        kappa, defined = kappa_arrays(below[0], below[1] - below[0], below[2] - below[1], n - below[2])
        values.extend(kappa[defined].tolist())
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


def people_vs_model(
    trials: Sequence[Trial], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Consistency:
    cells = agreement_cells([t.human_correct for t in trials], [t.model_correct for t in trials])
    kappa = kappa_from_counts(*cells)
    ci = bootstrap_kappa_cells(cells, resamples=resamples, seed=seed) if kappa is not None else None
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


def each_person_vs_model(
    trials: Sequence[Trial], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Consistency:
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
    return Consistency(
        kappa=sum(kappas) / len(kappas),
        ci=bootstrap_mean(kappas, resamples=resamples, seed=seed),
        trials=len(trials),
        people=len(kappas),
    )


def bootstrap_mean(
    values: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``values``: each resample draws len(values) of them with
    replacement and sums them left to right (a running sum, the same bits as a plain loop), then divides."""
    if not values or resamples <= 0:
        return None
    rng = random.Random(seed)
    data = np.asarray(values, dtype=np.float64)
    size = len(data)
    means: list[float] = []
    for chunk in resample_chunks(resamples, size):
        drawn = data[word_indices(resample_words(rng, size, chunk), size)]
        means.extend((np.cumsum(drawn, axis=1)[:, -1] / size).tolist())
    return percentile_interval(means)


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
        means, pairs = self.mean_pair_kappas(np.asarray(weights, dtype=np.float64)[None, :])
        return (None if pairs[0] == 0 else float(means[0])), int(pairs[0])

    def mean_pair_kappas(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`mean_pair_kappa` for every row of ``weights`` (resamples x images) at once: (means, NaN where no
        pair is defined; defined pairs). Pairs are taken row by row (person i with every later person k), in blocks
        of pairs: per block, each image's contribution to each pair's four counts is one 0/1 column, so a resample's
        counts are one matrix product (exact: whole numbers). The mean is a running sum over the pairs in order."""
        rows = weights.shape[0]
        total = np.zeros(rows)
        defined_pairs = np.zeros(rows, dtype=np.int64)
        first, second = np.triu_indices(len(self.people), k=1)
        block = max(1, CHUNK_ELEMENTS // max(rows, len(self.images), 1))
        for start in range(0, len(first), block):
            i, k = first[start : start + block], second[start : start + block]
            a_i, a_k, r_i, r_k = self.answered[i], self.answered[k], self.right[i], self.right[k]
            n = weights @ (a_i * a_k).T  # trials both answered
            both_right = weights @ (r_i * r_k).T
            first_right = weights @ (r_i * a_k).T  # person i right, on images both answered
            second_right = weights @ (a_i * r_k).T
            kappa, defined = kappa_arrays(
                both_right,
                first_right - both_right,
                second_right - both_right,
                n - first_right - second_right + both_right,
            )
            total = np.cumsum(np.concatenate([total[:, None], kappa], axis=1), axis=1)[:, -1]
            defined_pairs += defined.sum(axis=1)
        means = np.where(defined_pairs > 0, total / np.maximum(defined_pairs, 1), np.nan)
        return means, defined_pairs


def people_vs_people(
    trials: Sequence[Trial], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Consistency | None:
    """Mean pairwise error consistency between people on together images; None when no together image has two
    answers in these trials. The interval resamples the images (sorted by id); a resample's weights count how
    often it drew each image."""
    matrix = SharedMatrix.from_trials(trials)
    if len(matrix.people) < 2 or not matrix.images:
        return None
    count = len(matrix.images)
    kappa, pairs = matrix.mean_pair_kappa(np.ones(count))
    if pairs == 0:
        return Consistency(kappa=None, ci=None, trials=count, pairs=0)
    rng = random.Random(seed)
    values: list[float] = []
    pair_count = len(matrix.people) * (len(matrix.people) - 1) // 2
    for chunk in resample_chunks(resamples, max(count, pair_count)):
        drawn = word_indices(resample_words(rng, count, chunk), count)
        offsets = (np.arange(chunk, dtype=np.uint64) * np.uint64(count))[:, None]
        weights = np.bincount((drawn + offsets).ravel(), minlength=chunk * count).reshape(chunk, count)
        means, defined = matrix.mean_pair_kappas(weights.astype(np.float64))
        values.extend(means[defined > 0].tolist())
    return Consistency(kappa=kappa, ci=percentile_interval(values), trials=count, pairs=pairs)
