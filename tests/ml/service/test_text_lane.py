"""The text lane's policy with fake compute steps (no models): batches take turns between clients, groups run by
kind, a classification batch is one call, a client over its share is refused at once, and a refusal from the worker
reaches the caller in its own words."""

from __future__ import annotations

import asyncio

import pytest

from app.errors import ServiceBusy, ServiceUnavailable
from app.ml.service.admission import AdmissionBudget
from app.ml.service.text_contracts import TextClassifyResult, TextJob, TextResult
from app.ml.service.text_lane import TEXT_ROUND_UNITS, TextLane

pytestmark = pytest.mark.anyio


def result_for(job: TextJob) -> TextResult:
    return TextResult(
        job.opponent, job.attack, job.condition, job.budget, job.seed, 0, "a b", "a b", (), 2, 0, 0, (1.0,), 1.0, 0,
        1, 1.0, ("x",),
    )  # fmt: skip


async def test_batches_take_turns_between_clients_and_split_by_kind() -> None:
    batches: list[list[tuple[str, int]]] = []
    classified: list[list[list[str]]] = []
    gate = asyncio.Event()

    async def run_texts(jobs: list[TextJob]) -> list[TextResult]:
        batches.append([(job.client, job.seed) for job in jobs])
        await gate.wait()
        return [result_for(job) for job in jobs]

    async def run_classify(opponent: str, texts: list[list[str]]) -> list[TextClassifyResult]:
        classified.append(texts)
        return [TextClassifyResult([[1.0]] * len(t), ("x",)) for t in texts]

    lane = TextLane(
        run_texts,
        run_classify,
        max_batch=4,
        max_wait_s=0.01,
        queue_size=16,
        timeout_s=5,
        admission=AdmissionBudget(global_units=1000 * TEXT_ROUND_UNITS, per_client_units=10 * TEXT_ROUND_UNITS),
    )
    lane.start()
    try:
        first = asyncio.create_task(lane.text(TextJob("o", "textfooler", 0.1, seed=0, client="a")))
        await asyncio.sleep(0.05)  # the first batch runs (held at the gate) while the others queue
        greedy = [
            asyncio.create_task(lane.text(TextJob("o", "textfooler", 0.1, seed=s, client="a"))) for s in (1, 2, 3)
        ]
        honest = asyncio.create_task(lane.text(TextJob("o", "textfooler", 0.1, seed=9, client="b")))
        other_kind = asyncio.create_task(lane.text(TextJob("o", "deepwordbug", 0.1, seed=7, client="c")))
        words = asyncio.create_task(lane.classify("o", ["one", "two"], "d"))
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(first, *greedy, honest, other_kind, words)
        assert batches[0] == [("a", 0)]
        # The second batch takes turns: one of a's, then b's, c's (another group) and d's, before a's others.
        second = [seed for batch in batches[1:3] for _, seed in batch]
        assert 9 in second and 7 in second and second.index(9) < 2
        assert classified == [[["one", "two"]]] and (await words).probabilities == [[1.0], [1.0]]
    finally:
        await lane.stop()


async def test_over_its_share_a_client_is_refused_and_worker_refusals_reach_the_caller() -> None:
    hold = asyncio.Event()

    async def run_texts(jobs: list[TextJob]) -> list[TextResult]:
        await hold.wait()
        raise ServiceUnavailable("text opponent 'x' is not loaded in the model service")

    async def run_classify(opponent: str, texts: list[list[str]]) -> list[TextClassifyResult]:
        raise AssertionError("not asked")

    lane = TextLane(
        run_texts,
        run_classify,
        max_batch=4,
        max_wait_s=0.0,
        queue_size=16,
        timeout_s=5,
        admission=AdmissionBudget(global_units=100 * TEXT_ROUND_UNITS, per_client_units=TEXT_ROUND_UNITS),
    )
    lane.start()
    try:
        waiting = asyncio.create_task(lane.text(TextJob("x", "textfooler", 0.1, seed=1, client="p")))
        await asyncio.sleep(0.01)
        with pytest.raises(ServiceBusy):
            await lane.text(TextJob("x", "textfooler", 0.1, seed=2, client="p"))
        hold.set()
        with pytest.raises(ServiceUnavailable, match="not loaded"):
            await waiting
        assert lane.admission.in_flight == 0
    finally:
        await lane.stop()


async def test_players_behind_one_share_key_take_one_share_of_the_text_lane() -> None:
    # Six players from one address (share key "A") queue a text round each behind a batch on the worker; an honest
    # player from another address ("B") asks for one. Per player the honest round would be the seventh lane, behind
    # a whole batch of the flood; per share key it takes turns with the address as a whole.
    batches: list[list[str]] = []
    gate = asyncio.Event()

    async def run_texts(jobs: list[TextJob]) -> list[TextResult]:
        batches.append([job.client for job in jobs])
        await gate.wait()
        return [result_for(job) for job in jobs]

    async def run_classify(opponent: str, texts: list[list[str]]) -> list[TextClassifyResult]:
        batches.append(["classify"])
        return [TextClassifyResult([[1.0]] * len(t), ("x",)) for t in texts]

    unlimited = AdmissionBudget(global_units=1e12, per_client_units=1e12)
    lane = TextLane(
        run_texts, run_classify, max_batch=4, max_wait_s=0.01, queue_size=64, timeout_s=5, admission=unlimited
    )
    lane.start()
    try:
        first = asyncio.create_task(lane.text(TextJob("o", "textfooler", 0.1, seed=0, client="a0", share="A")))
        await asyncio.sleep(0.05)
        flood = [
            asyncio.create_task(lane.text(TextJob("o", "textfooler", 0.1, seed=k, client=f"a{k}", share="A")))
            for k in range(1, 7)
        ]
        honest = asyncio.create_task(lane.text(TextJob("o", "textfooler", 0.1, seed=9, client="b", share="B")))
        words = asyncio.create_task(lane.classify("o", ["one"], "b2", share="B"))
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(first, *flood, honest, words)
    finally:
        await lane.stop()
    assert batches[0] == ["a0"]
    served = [client for batch in batches[1:] for client in batch]
    assert served.index("b") <= 1 and served.index("classify") <= 3, f"not behind the flood: {batches}"
    assert served.count("b") == 1 and sum(client.startswith("a") for client in served) == 6
