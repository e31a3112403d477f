"""Science mode's numbers: accuracy of people and of the model with 95% Wilson intervals, grouped by any subset of
(condition, eps bucket, attack, opponent, pack, event); error consistency (Geirhos et al. 2020) between people and
the model and between pairs of people; confusion matrices. Everything is computed from *trials*: one trial is one
answered round (a person's answer and the model's answer on the very same pixels).

Definitions (the exported bundle's metadata.json and its recompute.py repeat them; keep the three in step):

* **Which answers count.** Answered classification rounds only (an unanswered round has no human answer to
  compare; a guess-the-machine round asks for the machine's answer, not the true class), and never an answer to a
  "together" image whose countdown is still running (``visibility.settled``). The model is scored on
  the same answered rounds as the people, so both accuracies are on identical trials; a together image therefore
  counts once per person who answered it, for the model too.
* **Eps buckets** (:func:`eps_bucket`). L∞ and L0 budgets are per-pixel changes on [0, 1] images, and the game plays
  them in whole grey levels: the bucket is ``round(eps * 255)`` grey levels, written ``linf:8/255`` (``l0:…``
  likewise: a cap per changed pixel). L2 budgets are radii in pixel units on [0, 1] images; their bucket is eps
  rounded to the nearest tenth, written ``l2:1.5``. Budgets of different norms never share a bucket.
* **Accuracy intervals**: Wilson score intervals, 95% (``intervals.wilson_interval``). They treat answers as
  independent trials; answers by one person, and the model's (identical) answers to the copies of one together
  image, are not, so a clustered analysis would give wider intervals. The export keeps player and image ids.
* **Error consistency** (Geirhos, Meding & Wichmann 2020, "Beyond accuracy"): for two observers on the same n
  trials, c_obs is the fraction of trials on which both are right or both are wrong, p1 and p2 their accuracies,
  c_exp = p1·p2 + (1−p1)·(1−p2) the agreement expected from accuracies alone, and
  kappa = (c_obs − c_exp) / (1 − c_exp). Undefined (None) when c_exp = 1 (both observers always right, or both
  always wrong) or n = 0.

  - *people vs model*: all answers of the group as trials, the person who answered as one observer and the model
    as the other (pooled over people; the model saw every trial).
  - *each person vs model* (Geirhos et al.'s observer-by-observer form): kappa of every person against the model
    over that person's own trials, then the mean over the people where it is defined. People with few trials give
    noisy (often 0 or undefined) kappas; read it with the number of people and trials.
  - *people vs people*: as Geirhos et al. do for human observers, kappa for every pair of people over the together
    images both answered (``shared_image``), then the mean over the pairs where it is defined.

* **Kappa intervals**: percentile bootstrap over trials, :data:`BOOTSTRAP_RESAMPLES` resamples drawn with Python's
  ``random.Random(BOOTSTRAP_SEED)`` (a fresh generator for each interval, so a figure does not depend on what else
  was computed). People vs model: each resample draws n trials with replacement (``rng.choices`` over the trials'
  four agreement cells, weighted by their counts). People vs people: each resample draws the group's together
  images with replacement (``rng.choices`` over the images sorted by id) and recomputes every pair's kappa and
  their mean. Resamples where kappa is undefined are dropped. The interval is the 2.5th and 97.5th percentile with
  linear interpolation between order statistics (numpy's default), None when fewer than 2 resamples are defined.
  Each person vs model: each resample draws the people's kappas with replacement (``rng.choices`` over the people
  sorted by id) and takes their mean.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from typing import Any

import numpy as np
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AnswerRecord, EventRecord, RoundRecord
from app.stats.intervals import wilson_interval
from app.stats.visibility import settled

# Guess-the-machine rounds (Zhou & Firestone 2019: pick the machine's answer) score agreement with the machine, not
# classification: they are not trials here.
CLASSIFY = "classify"

GROUP_KEYS: tuple[str, ...] = ("condition", "eps_bucket", "attack", "opponent", "pack", "event")
DEFAULT_GROUP_BY: tuple[str, ...] = ("condition", "eps_bucket", "attack", "opponent")
NORMS: tuple[str, ...] = ("linf", "l2", "l0")
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 2020  # the year of Geirhos et al.'s paper; any fixed value would do
CI_QUANTILES = (0.025, 0.975)  # a 95% percentile interval; written out so recompute.py uses the very same floats

EPS_BUCKET_DOC = (
    "L-inf and L0 budgets are per-pixel changes on [0,1] images: bucket = round(eps*255) grey levels, written "
    "'linf:8/255' or 'l0:8/255'. L2 budgets are radii in pixel units on [0,1] images: bucket = eps rounded to the "
    "nearest tenth, written 'l2:1.5'. Budgets of different norms never share a bucket."
)


# -- eps buckets ---------------------------------------------------------------------------------------------------


def eps_bucket(eps: float, norm: str) -> str:
    """The one place budgets are bucketed (see the module docstring)."""
    if norm in ("linf", "l0"):
        return f"{norm}:{round(eps * 255)}/255"
    if norm == "l2":
        return f"l2:{round(eps, 1):.1f}"
    raise ValueError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}")


def bucket_position(bucket: str) -> tuple[str, float]:
    """(norm, x) of a bucket for sorting and plotting: grey levels for linf/l0, the L2 radius for l2."""
    norm, _, value = bucket.partition(":")
    if norm in ("linf", "l0"):
        return norm, float(value.split("/")[0])
    return norm, float(value)


def _sort_value(key: str, value: str | None) -> tuple[int, str, float, str]:
    if value is None:
        return (0, "", 0.0, "")
    if key == "eps_bucket":
        norm, x = bucket_position(value)
        return (1, norm, x, value)
    return (1, "", 0.0, value)


# -- trials and filters --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One answered round: a person's answer and the model's answer on the same image."""

    answer_id: str
    answered_at: datetime
    player_id: str
    round_id: str
    shared_image: str | None
    event: str | None  # the event's join code
    pack: str
    opponent: str
    attack: str
    norm: str
    condition: str
    eps: float
    true_label: int
    human_answer: int
    model_answer: int
    human_correct: bool
    model_correct: bool
    response_ms: int = 0
    shown_ms: float | None = None  # flash mode: the on-screen time the browser measured
    timing_flagged: bool | None = None  # flash mode: measurement missing or off by more than a frame

    @property
    def eps_bucket(self) -> str:
        return eps_bucket(self.eps, self.norm)

    def key(self, name: str) -> str | None:
        if name == "eps_bucket":
            return self.eps_bucket
        value: str | None = getattr(self, name)
        return value


@dataclass(frozen=True)
class StatsFilter:
    """Which trials to count. ``since``/``until`` are whole UTC days, both included, on the answer's time."""

    event_id: str | None = None
    pack: str | None = None
    opponent: str | None = None
    attack: str | None = None
    condition: str | None = None
    since: date | None = None
    until: date | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        start = datetime.combine(self.since, time.min, tzinfo=UTC) if self.since else None
        end = datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=UTC) if self.until else None
        return start, end


def parse_group_by(raw: str | None) -> tuple[str, ...]:
    """``"condition,eps_bucket"`` to a tuple of keys; None means the default grouping, "" a single group. Unknown or
    repeated keys raise ValueError naming the valid ones."""
    if raw is None:
        return DEFAULT_GROUP_BY
    keys = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown or len(set(keys)) != len(keys):
        problem = f"unknown {', '.join(map(repr, unknown))}" if unknown else "a key given twice"
        raise ValueError(f"group_by: {problem}; use a comma-separated subset of: {', '.join(GROUP_KEYS)}")
    return keys


def filtered(query: Select[Any], filters: StatsFilter) -> Select[Any]:
    """``query`` (over answers joined to their rounds) narrowed to what ``filters`` asks for."""
    for column, value in (
        (RoundRecord.event_id, filters.event_id),
        (RoundRecord.pack, filters.pack),
        (RoundRecord.opponent, filters.opponent),
        (RoundRecord.attack, filters.attack),
        (RoundRecord.condition, filters.condition),
    ):
        if value is not None:
            query = query.where(column == value)
    start, end = filters.bounds()
    if start is not None:
        query = query.where(AnswerRecord.created_at >= start)
    if end is not None:
        query = query.where(AnswerRecord.created_at < end)
    return query


async def load_trials(session: AsyncSession, filters: StatsFilter | None = None) -> list[Trial]:
    """Every countable trial matching the filters, oldest answer first."""
    filters = filters or StatsFilter()
    query = (
        select(AnswerRecord, RoundRecord, EventRecord.code)
        .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
        .outerjoin(EventRecord, EventRecord.id == RoundRecord.event_id)
        .where(settled())
        .order_by(AnswerRecord.created_at, AnswerRecord.id)
    )
    query = filtered(query.where(RoundRecord.task == CLASSIFY), filters)
    rows = (await session.execute(query)).all()
    return [
        Trial(
            answer_id=answer.id,
            answered_at=answer.created_at if answer.created_at.tzinfo else answer.created_at.replace(tzinfo=UTC),
            player_id=answer.player_id,
            round_id=record.id,
            shared_image=record.shared_round_id,
            event=code,
            pack=record.pack,
            opponent=record.opponent,
            attack=record.attack,
            norm=record.norm,
            condition=record.condition,
            eps=float(record.eps),
            true_label=record.true_label,
            human_answer=answer.choice,
            model_answer=record.model_label,
            human_correct=bool(answer.correct),
            model_correct=bool(answer.model_correct),
            response_ms=answer.response_ms,
            shown_ms=answer.shown_ms,
            timing_flagged=answer.timing_flagged,
        )
        for answer, record, code in rows
    ]


# -- error consistency ---------------------------------------------------------------------------------------------


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


def each_person_vs_model(trials: Sequence[Trial], *, resamples: int = BOOTSTRAP_RESAMPLES) -> Consistency:
    """Geirhos et al.'s observer-by-observer form: kappa of each person against the model over that person's own
    trials, then the mean over the people for whom it is defined. The interval resamples people (sorted by id)."""
    by_person: dict[str, list[Trial]] = defaultdict(list)
    for trial in trials:
        by_person[trial.player_id].append(trial)
    kappas = []
    for person in sorted(by_person):
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
        people = tuple(sorted({t.player_id for t in shared}))
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


# -- grouping ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupStats:
    keys: dict[str, str | None]
    n: int
    human_correct: int
    model_correct: int
    people_vs_model: Consistency
    people_vs_people: Consistency | None
    each_person_vs_model: Consistency

    @property
    def human_accuracy(self) -> float:
        return self.human_correct / self.n if self.n else 0.0

    @property
    def model_accuracy(self) -> float:
        return self.model_correct / self.n if self.n else 0.0

    @property
    def human_ci(self) -> tuple[float, float]:
        return wilson_interval(self.human_correct, self.n)

    @property
    def model_ci(self) -> tuple[float, float]:
        return wilson_interval(self.model_correct, self.n)

    def as_dict(self) -> dict[str, object]:
        return {
            "keys": dict(self.keys),
            "n": self.n,
            "human_correct": self.human_correct,
            "human_accuracy": self.human_accuracy,
            "human_ci": list(self.human_ci),
            "model_correct": self.model_correct,
            "model_accuracy": self.model_accuracy,
            "model_ci": list(self.model_ci),
            "error_consistency_model": self.people_vs_model.as_dict(),
            "error_consistency_model_by_person": self.each_person_vs_model.as_dict(),
            "error_consistency_people": self.people_vs_people.as_dict() if self.people_vs_people else None,
        }


def group_stats(
    trials: Sequence[Trial], group_by: Sequence[str] = DEFAULT_GROUP_BY, *, resamples: int = BOOTSTRAP_RESAMPLES
) -> list[GroupStats]:
    """One row per combination of the group keys that has trials, sorted by the keys (eps buckets by norm, then
    size). With no keys, one row for all trials (none when there are no trials)."""
    for key in group_by:
        if key not in GROUP_KEYS:
            raise ValueError(f"unknown group key {key!r}; use: {', '.join(GROUP_KEYS)}")
    groups: dict[tuple[str | None, ...], list[Trial]] = defaultdict(list)
    for trial in trials:
        groups[tuple(trial.key(k) for k in group_by)].append(trial)
    ordered = sorted(groups, key=lambda values: [_sort_value(k, v) for k, v in zip(group_by, values, strict=True)])
    out = []
    for values in ordered:
        members = groups[values]
        out.append(
            GroupStats(
                keys=dict(zip(group_by, values, strict=True)),
                n=len(members),
                human_correct=sum(t.human_correct for t in members),
                model_correct=sum(t.model_correct for t in members),
                people_vs_model=people_vs_model(members, resamples=resamples),
                people_vs_people=people_vs_people(members, resamples=resamples),
                each_person_vs_model=each_person_vs_model(members, resamples=resamples),
            )
        )
    return out


# -- confusion matrices --------------------------------------------------------------------------------------------


@dataclass
class ConfusionMatrices:
    """Counts per (true class, answer) for people and for the model, one matrix per data pack (class sets differ)."""

    human: dict[str, list[list[int]]] = field(default_factory=dict)
    model: dict[str, list[list[int]]] = field(default_factory=dict)


def confusion_matrices(trials: Sequence[Trial], classes_of: dict[str, int]) -> ConfusionMatrices:
    """``classes_of[pack]`` is the pack's number of classes. Rows are the truth, columns the answer."""
    result = ConfusionMatrices()
    for trial in trials:
        size = classes_of[trial.pack]
        human = result.human.setdefault(trial.pack, [[0] * size for _ in range(size)])
        model = result.model.setdefault(trial.pack, [[0] * size for _ in range(size)])
        human[trial.true_label][trial.human_answer] += 1
        model[trial.true_label][trial.model_answer] += 1
    return result


def distinct_values(trials: Iterable[Trial], key: str) -> list[str]:
    values = {trial.key(key) for trial in trials}
    return sorted((v for v in values if v is not None), key=lambda v: _sort_value(key, v))


async def filter_choices(session: AsyncSession) -> dict[str, list[str]]:
    """The values each filter can take: those present among answered rounds. Events are not listed: a join code
    lets anyone join a running event, so the stats page takes a code only from someone who already has it."""
    out: dict[str, list[str]] = {}
    for name, column in (
        ("pack", RoundRecord.pack),
        ("opponent", RoundRecord.opponent),
        ("attack", RoundRecord.attack),
        ("condition", RoundRecord.condition),
    ):
        query = select(column).join(AnswerRecord, AnswerRecord.round_id == RoundRecord.id).distinct()
        out[name] = sorted(str(v) for v in await session.scalars(query))
    return out


# -- guess the machine ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuessAgreement:
    """Guess-the-machine rounds (Zhou & Firestone 2019): how often people named the machine's answer rather than the
    foil, overall and on the rounds where the machine was fooled (the interesting ones: chance is 50%)."""

    n: int
    agreed: int
    rate: float | None
    ci: tuple[float, float] | None
    fooled_n: int
    fooled_agreed: int
    fooled_rate: float | None
    fooled_ci: tuple[float, float] | None


async def guess_agreement(session: AsyncSession, filters: StatsFilter | None = None) -> GuessAgreement:
    filters = filters or StatsFilter()
    query = (
        select(AnswerRecord.correct, AnswerRecord.model_correct)
        .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
        .where(settled(), RoundRecord.task == "guess_machine")
    )
    query = filtered(query, filters)
    rows = (await session.execute(query)).all()
    agreed = sum(bool(correct) for correct, _ in rows)
    fooled = [bool(correct) for correct, model_correct in rows if not model_correct]
    return GuessAgreement(
        n=len(rows),
        agreed=agreed,
        rate=agreed / len(rows) if rows else None,
        ci=wilson_interval(agreed, len(rows)) if rows else None,
        fooled_n=len(fooled),
        fooled_agreed=sum(fooled),
        fooled_rate=sum(fooled) / len(fooled) if fooled else None,
        fooled_ci=wilson_interval(sum(fooled), len(fooled)) if fooled else None,
    )
