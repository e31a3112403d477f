"""Science mode's numbers: accuracy of people and of the model with 95% Wilson intervals, grouped by any subset of
(condition, eps bucket, attack, opponent, pack, event); error consistency (Geirhos et al. 2020) between people and
the model and between pairs of people; confusion matrices. Everything is computed from *trials*: one trial is one
answered round (a person's answer and the model's answer on the very same pixels).

Definitions (the exported bundle's metadata.json and its recompute.py repeat them; keep the three in step). The
trials, their filters and :func:`eps_bucket` are in app/stats/trials.py, error consistency and its bootstrap in
app/stats/consistency.py; this module groups trials and counts them:

* **Which answers count.** Answered classification rounds only (an unanswered round has no human answer to
  compare; a guess-the-machine round asks for the machine's answer, not the true class), and never an answer to a
  "together" image whose countdown is still running (``disclosure.settled``). The model is scored on
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

* **Kappa intervals**: percentile bootstrap, :data:`BOOTSTRAP_RESAMPLES` resamples drawn from Python's
  ``random.Random(BOOTSTRAP_SEED)`` (a fresh generator for each interval, so a figure does not depend on what else
  was computed). A resample of m items is one ``rng.getrandbits(32 * m)`` call read as m 32-bit words, lowest
  first; word u draws item ``(u * m) >> 32`` (integers only, so numpy here and plain Python in the bundle's
  recompute.py draw the very same resamples; app/stats/intervals.py). People vs model: each resample draws n trials
  with replacement, the trials standing in the order of their agreement cells (both right, person only, model only,
  both wrong). People vs people: each resample draws the group's together images with replacement (sorted by id)
  and recomputes every pair's kappa and their mean. Each person vs model: each resample draws the people's kappas
  with replacement (the people ordered by their smallest answer id, which the research bundle keeps while it
  renames people) and takes their mean; pairs of people are taken in that order too. Means over resampled kappas
  and over pairs are running sums, left to right. Resamples where kappa is undefined are dropped. The interval is
  the 2.5th and 97.5th percentile with linear interpolation between order statistics (numpy's default), None when
  fewer than 2 resamples are defined.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AnswerRecord, RoundRecord
from app.game.disclosure import settled
from app.stats.consistency import (
    BOOTSTRAP_RESAMPLES,
    Consistency,
    each_person_vs_model,
    people_vs_model,
    people_vs_people,
)
from app.stats.human_vs_model import HumanVsModel
from app.stats.intervals import wilson_interval
from app.stats.trials import StatsFilter, Trial, filtered, sort_key

GROUP_KEYS: tuple[str, ...] = ("condition", "eps_bucket", "attack", "opponent", "pack", "event")
DEFAULT_GROUP_BY: tuple[str, ...] = ("condition", "eps_bucket", "attack", "opponent")


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


# -- grouping ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupStats(HumanVsModel):
    keys: dict[str, str | None]
    people_vs_model: Consistency
    people_vs_people: Consistency | None
    each_person_vs_model: Consistency

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
    ordered = sorted(groups, key=lambda values: [sort_key(k, v) for k, v in zip(group_by, values, strict=True)])
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


# -- guess the machine ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuessAgreement:
    """Guess-the-machine rounds (Zhou & Firestone 2019): how often people named the machine's answer rather than the
    foil, overall and on the rounds where the machine was fooled. The two labels offered are always the truth and
    one wrong label: the machine's answer when it was fooled, its runner-up when it was not (app/game/rounds.py
    pick_foil), so the pair does not say whether the machine was fooled and chance is 50% on every round."""

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
