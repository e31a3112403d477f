"""Guess the machine: the two labels offered must not say whether the machine was fooled. Over many seeded rounds,
fooled and not, the truth is among the two equally often, and the machine's answer is always one of them."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from app.db.tables import PlayerRecord
from app.game import rounds
from app.ml.service.contracts import ImageJob, ImageResult, OpponentInfo

pytestmark = pytest.mark.anyio
CLASSES = tuple(f"class {i}" for i in range(10))


class SeededImages:
    """Half the images fool the machine, into a random other class; the probabilities are random otherwise."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def opponent_info(self, name: str) -> OpponentInfo:
        return OpponentInfo(
            name=name,
            pack="fashion",
            class_names=CLASSES,
            eligible_indices=tuple(range(100)),
            min_eps=8 / 255,
            clean_accuracy=0.9,
            image_shape=(28, 28),
        )

    def attack_catalog(self) -> list[dict[str, object]]:
        return [{"name": "pgd", "threat_model": "white-box", "norm": "linf", "params": []}]

    async def generate(self, job: ImageJob) -> ImageResult:
        truth = self.rng.randrange(10)
        answer = self.rng.choice([c for c in range(10) if c != truth]) if self.rng.random() < 0.5 else truth
        weights = [self.rng.random() for _ in range(10)]
        weights[answer] = 10.0
        probs = tuple(w / sum(weights) for w in weights)
        pixels = np.zeros((28, 28), dtype=np.uint8)
        return ImageResult(
            clean=pixels,
            adversarial=pixels,
            true_label=truth,
            clean_label=truth,
            clean_confidence=0.9,
            adversarial_label=answer,
            adversarial_probs=probs,
            linf=0.0,
            image_index=job.image_index,
            seed=job.seed,
        )


class NoDatabase:
    """The two session calls start_round makes, with nothing behind them."""

    def add(self, _record: Any) -> None: ...

    async def flush(self) -> None: ...


async def test_the_pair_does_not_say_whether_the_machine_was_fooled() -> None:
    source = SeededImages(seed=16)
    player = PlayerRecord(id="guesser", level=0)
    truth_offered: dict[bool, list[bool]] = {True: [], False: []}
    for _ in range(2000):
        record = await rounds.start_round(
            NoDatabase(),  # type: ignore[arg-type]
            player=player,
            source=source,  # type: ignore[arg-type]
            plan=rounds.RoundPlan(opponent="fashion-cnn"),
            task="guess_machine",
        )
        pair = [index for index, _ in rounds.offered_choices(record, CLASSES)]
        assert len(set(pair)) == 2 and record.model_label in pair
        fooled = record.model_label != record.true_label
        truth_offered[fooled].append(record.true_label in pair)
    fooled_rate = sum(truth_offered[True]) / len(truth_offered[True])
    held_rate = sum(truth_offered[False]) / len(truth_offered[False])
    assert min(len(truth_offered[True]), len(truth_offered[False])) > 900, "both kinds of round were played"
    # Equal rates: knowing whether the truth is offered predicts fooled-ness no better than the base rate.
    assert fooled_rate == held_rate, (fooled_rate, held_rate)
