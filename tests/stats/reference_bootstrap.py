"""The bootstrap as it was before it was vectorised (plain loops over Python's random.Random.choices), kept as the
reference the vectorised one (app/stats/consistency.py) must agree with within Monte-Carlo error, and as the
"before" column of benchmarks/stats_table.py. Same estimates, same seed, another stream of draws."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from itertools import accumulate

import numpy as np

from app.stats.consistency import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    Consistency,
    SharedMatrix,
    agreement_cells,
    error_consistency,
    kappa_from_counts,
    people_in_order,
    percentile_interval,
)
from app.stats.trials import Trial


def bootstrap_kappa_cells(
    cells: tuple[int, int, int, int], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    n = sum(cells)
    if n == 0:
        return None
    rng = random.Random(seed)
    cum = list(accumulate(cells))
    values = []
    for _ in range(resamples):
        draw = rng.choices((0, 1, 2, 3), cum_weights=cum, k=n)
        kappa = kappa_from_counts(draw.count(0), draw.count(1), draw.count(2), draw.count(3))
        if kappa is not None:
            values.append(kappa)
    return percentile_interval(values)


def people_vs_model(
    trials: Sequence[Trial], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Consistency:
    cells = agreement_cells([t.human_correct for t in trials], [t.model_correct for t in trials])
    kappa = kappa_from_counts(*cells)
    ci = bootstrap_kappa_cells(cells, resamples=resamples, seed=seed) if kappa is not None else None
    return Consistency(kappa=kappa, ci=ci, trials=len(trials))


def bootstrap_mean(
    values: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    rng = random.Random(seed)
    means = []
    for _ in range(resamples):
        draw = rng.choices(values, k=len(values))
        means.append(sum(draw) / len(draw))
    return percentile_interval(means)


def each_person_vs_model(
    trials: Sequence[Trial], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Consistency:
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
    ci = bootstrap_mean(kappas, resamples=resamples, seed=seed)
    return Consistency(kappa=sum(kappas) / len(kappas), ci=ci, trials=len(trials), people=len(kappas))


def people_vs_people(
    trials: Sequence[Trial], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Consistency | None:
    matrix = SharedMatrix.from_trials(trials)
    if len(matrix.people) < 2 or not matrix.images:
        return None
    kappa, pairs = matrix.mean_pair_kappa(np.ones(len(matrix.images)))
    if pairs == 0:
        return Consistency(kappa=None, ci=None, trials=len(matrix.images), pairs=0)
    rng = random.Random(seed)
    count = len(matrix.images)
    values = []
    for _ in range(resamples):
        weights = np.zeros(count)
        for j in rng.choices(range(count), k=count):
            weights[j] += 1.0
        value, _ = matrix.mean_pair_kappa(weights)
        if value is not None:
            values.append(value)
    return Consistency(kappa=kappa, ci=percentile_interval(values), trials=count, pairs=pairs)
