"""The model service's scheduler with fake compute steps (no torch, no clock in the assertions): batches filled
round-robin across clients, admission by compute units, abandoned jobs dropped, explanations cached and queued in a
low-priority lane of their own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from app.errors import ServiceBusy
from app.ml.service.admission import AdmissionBudget
from app.ml.service.classify_contracts import CLASSIFY_UNITS, ClassifyJob, ClassifyResult
from app.ml.service.contracts import ImageJob, ImageResult, job_from_wire, job_to_wire
from app.ml.service.cost import DEFAULT_ROUND_UNITS, job_units
from app.ml.service.explain_contracts import ExplainJob
from app.ml.service.scheduler import DEAR_UNITS, EXPLAIN_EVERY, Scheduler

pytestmark = pytest.mark.anyio
PGD = ImageJob.freeze_params({"steps": 20})
HSJ = ImageJob.freeze_params({"max_queries": 500})
UNLIMITED = AdmissionBudget(global_units=1e12, per_client_units=1e12)


def image_job(client: str, seed: int = 0, attack: str = "pgd") -> ImageJob:
    params = {"pgd": PGD, "hopskipjump": HSJ}.get(attack, ())
    return ImageJob("fashion-cnn", attack, params, image_index=seed, eps=0.05, seed=seed, client=client)


def explain_job(client: str, seed: int = 0) -> ExplainJob:
    image = np.zeros((4, 4), dtype=np.uint8)
    return ExplainJob("fashion-cnn", image, image, true_label=1, eps=0.05, norm="linf", seed=seed, client=client)


class FakeWorker:
    """Records what the scheduler hands it. The next ``hold(n)`` calls (one by default) keep the worker busy until
    ``release()``, so that a test can queue work behind them deterministically."""

    def __init__(self) -> None:
        self.batches: list[list[ImageJob]] = []
        self.explained: list[ExplainJob] = []
        self.order: list[str] = []
        self.to_hold = 1
        self.waiting: list[asyncio.Event] = []
        self.busy = asyncio.Event()

    def hold(self, calls: int = 1) -> None:
        self.to_hold = calls

    def release(self) -> None:
        self.to_hold = 0
        self.busy.clear()
        for gate in self.waiting:
            gate.set()
        self.waiting.clear()

    async def _work(self) -> None:
        if self.to_hold > 0:
            self.to_hold -= 1
            gate = asyncio.Event()
            self.waiting.append(gate)
            self.busy.set()
            await gate.wait()

    async def compute_batch(self, jobs: list[ImageJob]) -> list[ImageResult]:
        self.batches.append(jobs)
        self.order.append("batch")
        await self._work()
        return [result_for(job) for job in jobs]

    async def compute_explanation(self, job: ExplainJob) -> Any:
        self.explained.append(job)
        self.order.append("explain")
        await self._work()
        return ("explanation", job.seed)


def result_for(job: ImageJob) -> ImageResult:
    image = np.zeros((2, 2), dtype=np.uint8)
    return ImageResult(image, image, 0, 0, 1.0, 0, (1.0,), 0.0, image_index=job.image_index, seed=job.seed)


@asynccontextmanager
async def running(worker: FakeWorker, **options: Any) -> AsyncIterator[Scheduler]:
    settings: dict[str, Any] = dict(max_batch=32, max_wait_s=0.0, queue_size=1024, timeout_s=60.0, admission=UNLIMITED)
    settings.update(options)
    scheduler = Scheduler(worker.compute_batch, worker.compute_explanation, **settings)
    scheduler.start()
    try:
        yield scheduler
    finally:
        worker.release()
        await scheduler.stop()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def hold_the_worker(scheduler: Scheduler, worker: FakeWorker) -> asyncio.Task[ImageResult]:
    blocker = asyncio.create_task(scheduler.generate(image_job("blocker", seed=999)))
    await worker.busy.wait()
    return blocker


async def test_a_batch_takes_turns_between_clients() -> None:
    worker = FakeWorker()
    async with running(worker, max_batch=4, admission=AdmissionBudget(global_units=1e12, per_client_units=1e12)) as s:
        blocker = await hold_the_worker(s, worker)
        greedy = [asyncio.create_task(s.generate(image_job("greedy", seed=k))) for k in range(64)]
        await settle()
        honest = asyncio.create_task(s.generate(image_job("honest", seed=1000)))
        await settle()
        worker.release()
        await asyncio.gather(blocker, honest, *greedy)
    first_after_blocker = worker.batches[1]
    assert [job.client for job in first_after_blocker].count("honest") == 1, "the single job is not behind all 64"
    assert [job.client for job in first_after_blocker].count("greedy") == 3
    assert sum(len(batch) for batch in worker.batches) == 66


async def test_one_client_keeps_its_order_and_its_batches() -> None:
    worker = FakeWorker()
    worker.release()
    async with running(worker, max_batch=8, max_wait_s=0.05) as s:
        results = await asyncio.gather(*(s.generate(image_job("", seed=k)) for k in range(8)))
    assert [job.seed for job in worker.batches[0]] == list(range(8))
    assert [result.seed for result in results] == list(range(8))


async def test_a_job_over_its_clients_share_is_refused_at_once() -> None:
    worker = FakeWorker()
    budget = AdmissionBudget(global_units=4000, per_client_units=60)
    async with running(worker, admission=budget) as s:
        blocker = await hold_the_worker(s, worker)
        greedy = [asyncio.create_task(s.generate(image_job("greedy", k, "hopskipjump"))) for k in range(64)]
        await settle()
        refused = [task for task in greedy if task.done() and isinstance(task.exception(), ServiceBusy)]
        assert len(refused) == 63, "one job of any price in flight; the other 63 are over the share of 60 units"
        honest = asyncio.create_task(s.generate(image_job("honest", 1)))
        await settle()
        assert not honest.done(), "another client's round is admitted and waits its turn"
        worker.release()
        await asyncio.gather(blocker, honest, *(task for task in greedy if task not in refused))
        assert budget.in_flight == 0 and budget.refused == 63
        await s.generate(image_job("greedy", 500, "hopskipjump"))  # once its job ran, the greedy client may go on


async def test_the_global_budget_refuses_what_would_overfill_the_worker() -> None:
    budget = AdmissionBudget(global_units=100, per_client_units=1e9)
    budget.admit("a", 60)
    budget.admit("", 40)
    with pytest.raises(ServiceBusy):
        budget.admit("b", 20)
    third = budget.admit("c", 0)
    budget.release(third)
    assert budget.units_of("a") == 60 and budget.in_flight == 100


async def test_jobs_whose_callers_have_gone_are_not_run() -> None:
    worker = FakeWorker()
    async with running(worker) as s:
        blocker = await hold_the_worker(s, worker)
        gone = asyncio.create_task(s.generate(image_job("a", seed=1)))
        kept = asyncio.create_task(s.generate(image_job("b", seed=2)))
        await settle()
        gone.cancel()  # the HTTP client went away
        await settle()
        assert s.admission.units_of("a") == 0, "a dropped job's units are given back at once"
        worker.release()
        await asyncio.gather(blocker, kept)
        with pytest.raises(asyncio.CancelledError):
            await gone
    assert [job.seed for batch in worker.batches for job in batch] == [999, 2]
    assert s.jobs_dropped == 1


async def test_a_group_whose_callers_all_timed_out_is_not_started() -> None:
    worker = FakeWorker()
    async with running(worker, max_batch=8) as s:
        blocker = await hold_the_worker(s, worker)
        cheap = [asyncio.create_task(s.generate(image_job("a", seed=k, attack="fgsm"))) for k in range(2)]
        dear = [asyncio.create_task(s.generate(image_job(client, seed=10 + k))) for k, client in enumerate("bc")]
        await settle()
        worker.release()
        worker.hold(1)
        await blocker
        await worker.busy.wait()  # the next batch: the cheap group runs first and holds the worker
        assert [job.attack for job in worker.batches[-1]] == ["fgsm", "fgsm"]
        for task in dear:
            task.cancel()  # both callers timed out (or left) while the cheap group ran
        await settle()
        worker.release()
        await asyncio.gather(*cheap)
        await settle()
    assert [job.attack for batch in worker.batches for job in batch] == ["pgd", "fgsm", "fgsm"]
    assert s.jobs_dropped == 2


async def test_explanations_are_cached_per_round_and_shared_while_computed() -> None:
    worker = FakeWorker()
    async with running(worker) as s:
        first = asyncio.create_task(s.explain(explain_job("a", seed=7)))
        await worker.busy.wait()
        same_round = asyncio.create_task(s.explain(explain_job("b", seed=7)))
        await settle()
        worker.release()
        assert await first == await same_round == ("explanation", 7)
        assert await s.explain(explain_job("c", seed=7)) == ("explanation", 7)
        assert await s.explain(explain_job("c", seed=8)) == ("explanation", 8)
    assert [job.seed for job in worker.explained] == [7, 8], "the seed fixes an explanation: computed once"


async def test_the_explain_lane_is_bounded_and_holds_one_per_client() -> None:
    worker = FakeWorker()
    async with running(worker, explain_queue_size=2) as s:
        blocker = await hold_the_worker(s, worker)
        waiting = [asyncio.create_task(s.explain(explain_job(client, seed=k))) for k, client in enumerate("ab")]
        await settle()
        with pytest.raises(ServiceBusy):
            await s.explain(explain_job("c", seed=5))  # the lane is full
        worker.release()
        await asyncio.gather(blocker, *waiting)
        worker.hold(1)
        blocker = await hold_the_worker(s, worker)
        mine = asyncio.create_task(s.explain(explain_job("a", seed=20)))
        await settle()
        with pytest.raises(ServiceBusy):
            await s.explain(explain_job("a", seed=21))  # one waiting explanation per client
        worker.release()
        await asyncio.gather(blocker, mine)


async def test_explanations_wait_for_image_jobs_but_are_not_starved() -> None:
    worker = FakeWorker()
    async with running(worker, max_batch=1) as s:
        blocker = await hold_the_worker(s, worker)
        explanation = asyncio.create_task(s.explain(explain_job("a")))
        await settle()
        rounds = [asyncio.create_task(s.generate(image_job(f"p{k}", seed=k))) for k in range(EXPLAIN_EVERY + 3)]
        await settle()
        worker.release()
        await asyncio.gather(blocker, explanation, *rounds)
    assert worker.order.index("explain") == EXPLAIN_EVERY, "served after its share of batches, before the rest"
    assert worker.order.count("batch") == EXPLAIN_EVERY + 4


async def test_a_dear_job_waits_for_the_cheap_rounds_of_other_clients() -> None:
    worker = FakeWorker()
    async with running(worker, max_batch=4) as s:
        blocker = await hold_the_worker(s, worker)
        dear = asyncio.create_task(s.generate(image_job("greedy", seed=1, attack="hopskipjump")))  # 173 units
        await settle()
        rounds = [asyncio.create_task(s.generate(image_job(f"p{k}", seed=10 + k))) for k in range(12)]  # 20 each
        await settle()
        worker.release()
        await asyncio.gather(blocker, dear, *rounds)
    clients = [[job.client for job in batch] for batch in worker.batches[1:]]
    assert clients[-1] == ["greedy"], f"served after every cheap round that was waiting: {clients}"
    assert sum(len(batch) for batch in clients[:-1]) == 12


async def test_a_dear_job_does_not_jump_in_between_the_rounds_of_players_at_play() -> None:
    worker = FakeWorker()
    worker.release()  # nothing held: every batch returns at once, players resubmit as soon as they are answered

    async def player(s: Scheduler, name: str) -> None:
        for turn in range(6):
            await s.generate(image_job(name, seed=turn))

    async with running(worker, max_batch=8) as s:
        first_round = asyncio.gather(*(s.generate(image_job(f"p{k}", seed=100 + k)) for k in range(4)))
        await first_round  # the room is at play
        dear = asyncio.create_task(s.generate(image_job("greedy", seed=1, attack="hopskipjump")))  # 9 turns' worth
        await asyncio.gather(*(player(s, f"p{k}") for k in range(4)), dear)
    served_at = next(n for n, batch in enumerate(worker.batches) if batch[0].client == "greedy")
    assert served_at >= 6, f"the dear job waited for its turns, not for the first gap: batch {served_at}"


def defgan_job(client: str, seed: int = 0) -> ImageJob:
    """HopSkipJump-500 against Defense-GAN: ~1,540 units, far over DEAR_UNITS."""
    return ImageJob("fashion-defgan", "hopskipjump", HSJ, image_index=seed, eps=1.0, seed=seed, client=client)


async def test_a_dear_job_is_refused_while_others_play_and_runs_in_a_quiet_room() -> None:
    worker = FakeWorker()
    worker.release()
    budget = AdmissionBudget()  # the defaults: the dear job alone is within them
    async with running(worker, admission=budget, dear_quiet_s=3600.0) as s:
        assert job_units(defgan_job("x")) > DEAR_UNITS >= job_units(image_job("x", attack="hopskipjump"))
        await s.generate(defgan_job("lone"))  # nobody else asked for anything: it runs
        await s.generate(defgan_job("lone", seed=1))  # its own earlier requests do not count against it
        await s.generate(image_job("honest", seed=2))  # a player at play
        with pytest.raises(ServiceBusy):
            await s.generate(defgan_job("lone", seed=3))
        with pytest.raises(ServiceBusy):
            await s.generate(defgan_job("greedy", seed=4))
        await s.generate(image_job("greedy", seed=5, attack="hopskipjump"))  # 173 units: not dear, admitted
        assert s.dear_refused == 2 and budget.in_flight == 0
    assert [batch[0].client for batch in worker.batches] == ["lone", "lone", "honest", "greedy"]


async def test_the_room_turns_quiet_once_nobody_asked_within_the_window() -> None:
    worker = FakeWorker()
    worker.release()
    async with running(worker, admission=AdmissionBudget(), dear_quiet_s=0.05) as s:
        await s.generate(image_job("honest"))
        with pytest.raises(ServiceBusy):
            await s.generate(defgan_job("greedy"))
        await asyncio.sleep(0.1)  # past the window: the honest player has not asked again
        await s.generate(defgan_job("greedy", seed=1))


async def test_a_dear_job_is_refused_while_another_clients_job_is_admitted() -> None:
    worker = FakeWorker()
    budget = AdmissionBudget()
    async with running(worker, admission=budget, dear_quiet_s=0.0) as s:
        blocker = await hold_the_worker(s, worker)  # asked long ago as far as the window goes, but still running
        with pytest.raises(ServiceBusy):
            await s.generate(defgan_job("greedy"))
        worker.release()
        await blocker
        await s.generate(defgan_job("greedy", seed=1))


async def test_players_behind_one_share_key_take_one_share_of_turns() -> None:
    # Eight players from one address (one share key) each ask for a dear round; an honest player from another
    # address asks for the same. Per player, the honest round would be the ninth lane in line, behind two batches of
    # the flood; per share key, it takes turns with the address as a whole, so it is in the first batch.
    worker = FakeWorker()
    async with running(worker, max_batch=4) as s:
        blocker = await hold_the_worker(s, worker)
        flood = [
            asyncio.create_task(s.generate(replace(image_job(f"sock{k}", seed=k, attack="hopskipjump"), share="A")))
            for k in range(8)
        ]
        await settle()
        honest_job = replace(image_job("honest", seed=100, attack="hopskipjump"), share="B")
        honest = asyncio.create_task(s.generate(honest_job))
        await settle()
        worker.release()
        await asyncio.gather(blocker, honest, *flood)
    first_after_blocker = [job.client for job in worker.batches[1]]
    served = [[job.client for job in batch] for batch in worker.batches[1:]]
    assert "honest" in first_after_blocker, f"served first, not behind the flood: {served}"
    assert sum(len(batch) for batch in worker.batches) == 10


async def test_without_a_share_key_each_client_has_its_own_share() -> None:
    worker = FakeWorker()
    async with running(worker, max_batch=4) as s:
        blocker = await hold_the_worker(s, worker)
        jobs = [asyncio.create_task(s.generate(image_job(f"p{k}", seed=k))) for k in range(3)]
        await settle()
        worker.release()
        await asyncio.gather(blocker, *jobs)
    assert [job.lane for job in worker.batches[1]] == ["p0", "p1", "p2"]


def test_the_share_key_travels_to_a_separate_model_service() -> None:
    job = replace(image_job("p1"), share="address:10.0.0.7")
    back = job_from_wire(json.loads(json.dumps(job_to_wire(job))))
    assert (back.client, back.share, back.lane) == ("p1", "address:10.0.0.7", "address:10.0.0.7")


async def test_painters_behind_one_share_key_take_one_share_of_turns() -> None:
    # Forty painters from one address (share "A") each wait for an answer on their painting behind a batch on the
    # worker; a painter from another address ("B") asks last. Per painter, the honest answer would be the 41st lane
    # in line; per share key, the address gets one turn's units (one default round, CLASSIFY_UNITS each) before it.
    worker = FakeWorker()
    answered: list[str] = []

    async def compute_classify(jobs: list[ClassifyJob]) -> list[ClassifyResult]:
        answered.extend(job.client for job in jobs)
        return [ClassifyResult(0, 1.0, (0,), (1.0,)) for _ in jobs]

    image = np.zeros((4, 4), dtype=np.uint8)
    async with running(worker, max_batch=8, compute_classify=compute_classify) as s:
        blocker = await hold_the_worker(s, worker)
        flood = [
            asyncio.create_task(s.classify(ClassifyJob("fashion-cnn", image, client=f"a{k}", share="A")))
            for k in range(40)
        ]
        await settle()
        honest = asyncio.create_task(s.classify(ClassifyJob("fashion-cnn", image, client="b", share="B")))
        await settle()
        worker.release()
        await asyncio.gather(blocker, honest, *flood)
    assert len(answered) == 41
    assert answered.index("b") <= DEFAULT_ROUND_UNITS / CLASSIFY_UNITS, f"behind the whole flood: {answered}"


async def test_explanations_behind_one_share_key_take_one_share_of_the_explain_lane() -> None:
    worker = FakeWorker()
    async with running(worker) as s:
        blocker = await hold_the_worker(s, worker)
        flood = [asyncio.create_task(s.explain(replace(explain_job(f"a{k}", seed=k), share="A"))) for k in (1, 2, 3)]
        await settle()
        honest = asyncio.create_task(s.explain(replace(explain_job("b", seed=9), share="B")))
        await settle()
        worker.release()
        await asyncio.gather(blocker, honest, *flood)
        with pytest.raises(ServiceBusy):  # still one waiting explanation per player, whatever their share
            worker.hold(1)
            blocker = await hold_the_worker(s, worker)
            mine = asyncio.create_task(s.explain(replace(explain_job("a1", seed=20), share="A")))
            await settle()
            try:
                await s.explain(replace(explain_job("a1", seed=21), share="A"))
            finally:
                worker.release()
                await asyncio.gather(blocker, mine)
    assert [job.client for job in worker.explained] == ["a1", "b", "a2", "a3", "a1"]
