"""The reply to a round request takes as long whether the attack fooled the machine or not: a black-box attack that
stops at its first fooling query is waited out to its full query budget. A fake clock stands in for time."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.db.tables import PlayerRecord
from app.game import rounds
from app.ml.service.contracts import ImageJob, ImageResult, OpponentInfo

pytestmark = pytest.mark.anyio
SECONDS_PER_QUERY = 1 / 64  # a power of two, so the fake clock's sums are exact
BUDGET = 500


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class QueryAttack:
    """A score-based attack that spends SECONDS_PER_QUERY per query and stops once the machine is fooled."""

    def __init__(self, clock: FakeClock, queries: int, overhead_s: float = 0.0) -> None:
        self.clock = clock
        self.queries = queries
        self.overhead_s = overhead_s

    def opponent_info(self, name: str) -> OpponentInfo:
        return OpponentInfo(
            name=name,
            pack="fashion",
            class_names=tuple(f"class {i}" for i in range(10)),
            eligible_indices=(0,),
            min_eps=8 / 255,
            clean_accuracy=0.9,
            image_shape=(28, 28),
        )

    def attack_catalog(self) -> list[dict[str, object]]:
        return [{"name": "square", "threat_model": "score", "norm": "linf", "params": []}]

    async def generate(self, job: ImageJob) -> ImageResult:
        self.clock.now += self.overhead_s + self.queries * SECONDS_PER_QUERY
        fooled = self.queries < BUDGET
        probs = [0.0] * 10
        probs[1 if fooled else 0] = 1.0
        pixels = np.zeros((28, 28), dtype=np.uint8)
        return ImageResult(
            clean=pixels,
            adversarial=pixels,
            true_label=0,
            clean_label=0,
            clean_confidence=1.0,
            adversarial_label=1 if fooled else 0,
            adversarial_probs=tuple(probs),
            linf=0.0,
            queries=self.queries,
            query_budget=BUDGET,
            image_index=job.image_index,
            seed=job.seed,
        )


class NoDatabase:
    def add(self, _record: object) -> None: ...

    async def flush(self) -> None: ...


async def reply_seconds(
    monkeypatch: pytest.MonkeyPatch, queries: int, overhead_s: float = 0.0, source: object = None
) -> tuple[float, bool]:
    clock = FakeClock()
    monkeypatch.setattr(rounds, "monotonic", clock.monotonic)
    monkeypatch.setattr(rounds, "sleep", clock.sleep)
    started = clock.now
    record = await rounds.start_round(
        NoDatabase(),  # type: ignore[arg-type]
        player=PlayerRecord(id="timed", level=0),
        source=source or QueryAttack(clock, queries, overhead_s),  # type: ignore[arg-type]
        plan=rounds.RoundPlan(opponent="fashion-cnn", attack="square"),
    )
    return clock.now - started, record.model_label != record.true_label


async def test_a_fooling_attack_replies_no_sooner_than_one_that_spends_its_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rounds, "PACING", rounds.ReplyPacing())
    # Before any round has spent the whole budget, the time per query so far stands in for it.
    for queries in (1, 40, 499):
        waited, fooled = await reply_seconds(monkeypatch, queries)
        assert fooled and waited == BUDGET * SECONDS_PER_QUERY, (queries, waited)
    # Once rounds have spent it, a fooling round waits as long as they took, fixed costs included (which the time
    # per query would overstate).
    held = []
    for _ in range(3):
        seconds, fooled = await reply_seconds(monkeypatch, BUDGET, overhead_s=0.5)
        assert not fooled
        held.append(seconds)
    assert held == [0.5 + BUDGET * SECONDS_PER_QUERY] * 3
    for queries in (1, 40, 499):
        waited, fooled = await reply_seconds(monkeypatch, queries, overhead_s=0.5)
        assert fooled and waited == held[0], (queries, waited, held[0])


async def test_before_a_held_round_the_fooling_rounds_time_is_fitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rounds, "PACING", rounds.ReplyPacing())
    full = 0.5 + BUDGET * SECONDS_PER_QUERY
    first, _ = await reply_seconds(monkeypatch, 40, overhead_s=0.5)
    assert first > full, "one round alone: its time per query, set-up included, times the budget"
    for queries in (100, 7, 250):
        waited, fooled = await reply_seconds(monkeypatch, queries, overhead_s=0.5)
        assert fooled and waited == pytest.approx(full, abs=1e-9), (queries, waited, full)


class MadeAhead(QueryAttack):
    """A ready-round pool's result: its attack ran earlier, on a clock of its own, not during the request."""

    async def generate(self, job: ImageJob) -> ImageResult:
        return dataclasses.replace(await super().generate(job), made_ahead=True)


async def test_a_round_made_ahead_comes_back_at_once_fooled_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rounds, "PACING", rounds.ReplyPacing())
    await reply_seconds(monkeypatch, BUDGET)  # the full budget's time is known
    for queries in (40, BUDGET):
        waited, _ = await reply_seconds(monkeypatch, queries, source=MadeAhead(FakeClock(), queries))
        assert waited == 0.0


class StepAttack(QueryAttack):
    """PGD stopping early on the shown image: white-box, so no queries, but ``queries`` gradient steps of 20, each
    SECONDS_PER_QUERY long; fooled when it stopped before the last step."""

    async def generate(self, job: ImageJob) -> ImageResult:
        result = await super().generate(job)
        fooled = self.queries < 20
        probs = tuple(1.0 if label == (1 if fooled else 0) else 0.0 for label in range(10))
        return dataclasses.replace(
            result,
            adversarial_label=1 if fooled else 0,
            adversarial_probs=probs,
            queries=None,
            query_budget=None,
            steps=self.queries,
            step_budget=20,
        )


async def step_round(clock: FakeClock, steps: int) -> tuple[float, bool, int | None]:
    started = clock.now
    record = await rounds.start_round(
        NoDatabase(),  # type: ignore[arg-type]
        player=PlayerRecord(id="timed", level=0),
        source=StepAttack(clock, steps, overhead_s=0.25),  # type: ignore[arg-type]
        plan=rounds.RoundPlan(opponent="fashion-cnn", attack="pgd", early_stop=True),
    )
    return clock.now - started, record.model_label != record.true_label, record.steps_run


async def test_a_white_box_round_that_stopped_early_waits_for_the_full_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Early stopping (issue 15) must not bring the timing tell back: fewer steps, the same reply time."""
    monkeypatch.setattr(rounds, "PACING", rounds.ReplyPacing())
    clock = FakeClock()
    monkeypatch.setattr(rounds, "monotonic", clock.monotonic)
    monkeypatch.setattr(rounds, "sleep", clock.sleep)
    full = [await step_round(clock, 20) for _ in range(2)]
    assert full == [(0.25 + 20 * SECONDS_PER_QUERY, False, 20)] * 2
    for steps in (0, 3, 19):
        waited, fooled, stored = await step_round(clock, steps)
        assert fooled and stored == steps
        assert waited == full[0][0], (steps, waited)


async def test_fixed_step_pgd_rounds_are_not_padded(monkeypatch: pytest.MonkeyPatch) -> None:
    """PGD without early stopping always spends its steps (steps == step_budget): nothing to hide, no wait added."""
    monkeypatch.setattr(rounds, "PACING", rounds.ReplyPacing())
    clock = FakeClock()
    monkeypatch.setattr(rounds, "monotonic", clock.monotonic)
    monkeypatch.setattr(rounds, "sleep", clock.sleep)
    assert await step_round(clock, 20) == (0.25 + 20 * SECONDS_PER_QUERY, False, 20)
