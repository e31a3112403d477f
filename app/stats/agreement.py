"""Agreement between people, image by image, in a fixed-set event (issue 15): every player sees the same items, so
their answers can be compared per item.

Per item: how many people answered, the share who named the truth (with its Wilson interval) and the answer most of
them gave. Over the set: the pairwise agreement (of every two people who answered the same item, the share who gave
the same answer, averaged over items) and Fleiss' kappa (Fleiss 1971), that agreement beyond what the answers'
overall frequencies would give by chance, each with a 95% percentile-bootstrap interval over items (seeded, so the
same answers always give the same interval). Items may have different numbers of raters (players join late or
leave): each item's agreement is over its own raters, as in Fleiss' formula with n_i raters per item; an item with
fewer than two answers has no pairs and counts for neither figure.

Plain Python: the numbers come from the answers table through :func:`event_agreement`, and :func:`agreement`
computes them from any (item, answer, correct) triples.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AnswerRecord, RoundRecord
from app.game.disclosure import settled
from app.stats.intervals import Proportion

RESAMPLES = 2000
SEED = 15


@dataclass(frozen=True)
class ItemAgreement:
    item_id: int
    true_label: int
    accuracy: Proportion  # people who named the truth, of those who answered the item
    modal_answer: int  # the answer most people gave (the lowest label on a tie)
    modal_share: float
    pairwise: float | None  # share of agreeing pairs among this item's raters; None under two answers


@dataclass(frozen=True)
class Agreement:
    items: tuple[ItemAgreement, ...]
    answers: int
    pairwise: float | None
    pairwise_ci95: tuple[float, float] | None
    kappa: float | None
    kappa_ci95: tuple[float, float] | None

    def as_dict(self) -> dict[str, object]:
        return {
            "items": [
                {
                    "item_id": item.item_id,
                    "true_label": item.true_label,
                    **item.accuracy.as_dict(),
                    "modal_answer": item.modal_answer,
                    "modal_share": item.modal_share,
                    "pairwise_agreement": item.pairwise,
                }
                for item in self.items
            ],
            "answers": self.answers,
            "pairwise_agreement": self.pairwise,
            "pairwise_agreement_ci95": self.pairwise_ci95,
            "fleiss_kappa": self.kappa,
            "fleiss_kappa_ci95": self.kappa_ci95,
        }


def pair_share(counts: Counter[int]) -> float | None:
    """Of every two raters of one item, the share who gave the same answer: Σ n_j(n_j - 1) / n(n - 1)."""
    n = sum(counts.values())
    if n < 2:
        return None
    return sum(c * (c - 1) for c in counts.values()) / (n * (n - 1))


def fleiss(tables: Sequence[Counter[int]]) -> tuple[float | None, float | None]:
    """(mean pairwise agreement P̄, Fleiss' kappa) over items with two or more raters. Chance agreement P_e is the
    sum of squared overall answer shares of those items' answers; kappa is None when P_e is 1 (everyone always gives
    the same one answer: agreement beyond chance is undefined)."""
    rated = [counts for counts in tables if sum(counts.values()) >= 2]
    if not rated:
        return None, None
    shares = [pair_share(counts) for counts in rated]
    p_bar = sum(share for share in shares if share is not None) / len(rated)
    totals: Counter[int] = Counter()
    for counts in rated:
        totals.update(counts)
    n = sum(totals.values())
    p_e = sum((count / n) ** 2 for count in totals.values())
    if p_e >= 1.0:
        return p_bar, None
    return p_bar, (p_bar - p_e) / (1 - p_e)


def percentile_interval(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    low = ordered[int(round(0.025 * (len(ordered) - 1)))]
    high = ordered[int(round(0.975 * (len(ordered) - 1)))]
    return (low, high)


def agreement(answers: Iterable[tuple[int, int, int]], *, resamples: int = RESAMPLES, seed: int = SEED) -> Agreement:
    """Agreement from (item_id, answer, true_label) triples, one per person and item."""
    by_item: dict[int, Counter[int]] = defaultdict(Counter)
    truth: dict[int, int] = {}
    count = 0
    for item_id, answer, true_label in answers:
        by_item[item_id][answer] += 1
        truth[item_id] = true_label
        count += 1
    items = []
    for item_id in sorted(by_item):
        counts = by_item[item_id]
        n = sum(counts.values())
        modal, modal_count = min(counts.items(), key=lambda pair: (-pair[1], pair[0]))
        items.append(
            ItemAgreement(
                item_id=item_id,
                true_label=truth[item_id],
                accuracy=Proportion(counts[truth[item_id]], n),
                modal_answer=modal,
                modal_share=modal_count / n,
                pairwise=pair_share(counts),
            )
        )
    tables = [by_item[item.item_id] for item in items]
    p_bar, kappa = fleiss(tables)
    rng = random.Random(seed)
    boot_p: list[float] = []
    boot_k: list[float] = []
    if len(tables) >= 2 and p_bar is not None:
        for _ in range(resamples):
            sample = [tables[rng.randrange(len(tables))] for _ in tables]
            p, k = fleiss(sample)
            if p is not None:
                boot_p.append(p)
            if k is not None:
                boot_k.append(k)
    return Agreement(
        items=tuple(items),
        answers=count,
        pairwise=p_bar,
        pairwise_ci95=percentile_interval(boot_p),
        kappa=kappa,
        kappa_ci95=percentile_interval(boot_k) if kappa is not None else None,
    )


async def event_agreement(session: AsyncSession, event_id: str) -> Agreement:
    """Agreement over the fixed-set items of one event, from the answers the reveal rule lets anyone see (a
    classify answer names a class; guess-the-machine answers ask something else and are left out)."""
    rows = await session.execute(
        select(RoundRecord.item_id, AnswerRecord.choice, RoundRecord.true_label)
        .join(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
        .where(
            RoundRecord.event_id == event_id,
            RoundRecord.item_id.is_not(None),
            RoundRecord.task == "classify",
            settled(),
        )
    )
    return agreement((item, choice, truth) for item, choice, truth in rows.all() if item is not None)
