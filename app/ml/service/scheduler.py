"""Who gets the model worker next: the in-process service's queueing policy, apart from the torch that does the work.

* Admission (app/ml/service/admission.py): a job over its client's share of compute units, or over the global
  budget, is refused at once with ServiceBusy instead of queuing behind everyone.
* Fair batching (app/ml/service/fair_queue.py): while more than one client has work in (or had, within
  ``CONTENTION_MEMORY_S``), a batch is filled by deficit round-robin over clients (an image job's ``lane``: its
  share key when the caller gave one, so that clients behind one key share its turns), each turn worth one default
  round's units (app/ml/service/cost.py), so a client of dear jobs is served once every so many turns of the others;
  then the batch is split into groups of compatible jobs (``ImageJob.batch_key``) that run cheapest first. When only
  such a client waits, the worker holds off for up to ``FAIR_HOLD_OFF_S`` (the others' next rounds arrive within
  it) and then serves it anyway. A lone client's jobs are taken first come, first served, in batches as large as
  before.
* Dear jobs wait for a quiet room: a job costing more than ``DEAR_UNITS`` (fifteen default rounds; a black-box attack
  against Defense-GAN, ~1,500 units, holds the worker for seconds and cannot be interrupted) is refused at once
  (ServiceBusy) while anyone else has had work in within ``DEAR_QUIET_S``; in a quiet room it runs at once.
  Fair turns alone do not protect a room whose players think between rounds: the worker idles in those pauses and
  a dear job served in one blocks every round asked for during it (benchmarks/flood_http.py).
* Abandoned work is dropped: a job whose caller has gone (its future cancelled: timed out or disconnected) is skipped
  before it runs, and a group whose callers have all gone is not started.
* Explanations: answered from a bounded LRU when the same round was explained before (app/ml/service/explain_cache.py),
  shared when the same one is being computed, else queued in a small lane of their own (one waiting per client,
  turns by the job's ``lane`` as for image jobs) that the worker serves when no image job waits, or once every
  ``EXPLAIN_EVERY`` batches while they do: explanations can neither bypass the bound nor starve rounds.
* Painters' answers (ClassifyJob, app/ml/service/classify_contracts.py) share the image queue, its admission and its
  turns (by the job's ``lane``, its share key when given): they are batched by opponent into one forward pass
  (``compute_classify``), beside image jobs, at CLASSIFY_UNITS each.

Plain asyncio, no torch: the compute steps are handed in, so the policy is tested with fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.background import stop_task
from app.errors import ServiceBusy, ServiceUnavailable
from app.messages import SERVICE_BUSY, SERVICE_DOWN
from app.ml.service.admission import SERVER_CLIENT, AdmissionBudget, Ticket
from app.ml.service.classify_contracts import CLASSIFY_UNITS, ClassifyJob, ClassifyResult
from app.ml.service.contracts import ImageJob, ImageResult
from app.ml.service.cost import DEFAULT_ROUND_UNITS, job_units
from app.ml.service.explain_cache import DEFAULT_CACHE_SIZE, ExplainCache, explain_key
from app.ml.service.explain_contracts import ExplainJob, ExplainResult
from app.ml.service.fair_queue import FairQueue

logger = logging.getLogger(__name__)

ComputeBatch = Callable[[list[ImageJob]], Awaitable[list[ImageResult]]]
ComputeExplanation = Callable[[ExplainJob], Awaitable[ExplainResult]]
ComputeClassify = Callable[[list[ClassifyJob]], Awaitable[list[ClassifyResult]]]
Job = TypeVar("Job")
Result = TypeVar("Result")

EXPLAIN_QUEUE_SIZE = 4  # explanations waiting at most; a few hundred forward passes each
EXPLAIN_EVERY = 8  # while image jobs wait, one explanation after this many batches
# How long the worker stays idle for other clients before it serves a job its client's turns have not paid for: the
# honest players of benchmarks/model_flood.py resubmit within a millisecond, but on a loaded 2-core machine the
# process can be descheduled for several (a 5 ms hold-off let 4 dear jobs through in 68 s there). Small against the
# seconds such a job costs.
FAIR_HOLD_OFF_S = 0.1
# How long the batcher keeps taking turns after it last saw two clients with work in (queued, or in a batch that
# just ended). Without a memory, the moment after a batch (the honest players' rounds answered, their next ones not
# yet in) looks like a lone client's queue, and the dear job would go first every time.
CONTENTION_MEMORY_S = 1.0
# A job dearer than this many units is refused while anyone else (players, or the pool refilling after them) asked
# for anything within DEAR_QUIET_S seconds (longer than a player takes to look at an image and answer): fifteen
# default rounds, about 1.2 s of the reference CPU's worker alone. Every round attack against the other opponents
# costs less (HopSkipJump-500: 173 on fashion-cnn, 210 on fashion-jpeg; CW-100 on fashion-defgan: 218); black-box
# attacks against fashion-defgan cost more (Square-500: 954, HopSkipJump-500: 1,541).
DEAR_UNITS = 15 * DEFAULT_ROUND_UNITS
DEAR_QUIET_S = 5.0


@dataclass
class Pending(Generic[Job, Result]):
    job: Job
    future: asyncio.Future[Result]
    ticket: Ticket | None = None
    started: bool = False
    waiters: int = 1
    key: Hashable = None
    units: float = 0.0
    released: bool = field(default=False, repr=False)


def queued_units(pending: Pending[ImageJob, ImageResult]) -> float:
    """What a queued job costs its client's turns: nothing once its caller has gone (it leaves at once, unrun)."""
    return 0.0 if pending.future.done() else pending.units


class Scheduler:
    def __init__(
        self,
        compute_batch: ComputeBatch,
        compute_explanation: ComputeExplanation,
        *,
        max_batch: int,
        max_wait_s: float,
        queue_size: int,
        timeout_s: float,
        admission: AdmissionBudget | None = None,
        explain_queue_size: int = EXPLAIN_QUEUE_SIZE,
        explain_cache_size: int = DEFAULT_CACHE_SIZE,
        compute_classify: ComputeClassify | None = None,
        dear_quiet_s: float = DEAR_QUIET_S,
    ) -> None:
        self._compute_batch = compute_batch
        self._compute_classify = compute_classify
        self._compute_explanation = compute_explanation
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        self.admission = admission or AdmissionBudget()
        self.explanations = ExplainCache(explain_cache_size)
        self._work = asyncio.Event()
        self._images: FairQueue[Pending[ImageJob, ImageResult]] = FairQueue(
            queue_size, self._work, cost=queued_units, quantum=DEFAULT_ROUND_UNITS
        )
        self._explain_lane: FairQueue[Pending[ExplainJob, ExplainResult]] = FairQueue(explain_queue_size, self._work)
        self._explaining: dict[Hashable, Pending[ExplainJob, ExplainResult]] = {}
        self._collector: asyncio.Task[None] | None = None
        self._contended_at = float("-inf")
        self.dear_quiet_s = dear_quiet_s
        self._asked_at: dict[str, float] = {}  # players' last image requests within dear_quiet_s
        self.dear_refused = 0
        self.jobs_dropped = 0
        self.last_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._collector = asyncio.create_task(self._collect_forever(), name="model-service-collector")

    @property
    def running(self) -> bool:
        return self._collector is not None and not self._collector.done()

    @property
    def queued(self) -> int:
        return len(self._images)

    async def stop(self) -> None:
        await stop_task(self._collector)
        self._collector = None
        abandoned: list[Pending[Any, Any]] = [*self._images.drain(), *self._explain_lane.drain()]
        for pending in abandoned:
            if not pending.future.done():
                pending.future.set_exception(ServiceUnavailable(SERVICE_DOWN))
            self._release(pending)

    # -- requests ----------------------------------------------------------------------------------------------

    async def generate(self, job: ImageJob) -> ImageResult:
        if not self.running:
            raise ServiceUnavailable(SERVICE_DOWN)
        if self._images.full():
            raise ServiceBusy(SERVICE_BUSY)
        units = job_units(job)
        if units > DEAR_UNITS and self._others_playing(job.client):
            self.dear_refused += 1
            raise ServiceBusy(SERVICE_BUSY)
        self._asked_at[job.client] = asyncio.get_running_loop().time()
        ticket = self.admission.admit(job.client, units)
        future = asyncio.get_running_loop().create_future()
        pending: Pending[ImageJob, ImageResult] = Pending(job, future, ticket, units=units)
        self._images.put_nowait(job.lane, pending)
        pending.future.add_done_callback(lambda _: self._release_unless_started(pending))
        return await self._await(pending)

    async def classify(self, job: ClassifyJob) -> ClassifyResult:
        """A painter's answer: queued with the image jobs (same bound, admission and turns), batched by opponent."""
        if not self.running or self._compute_classify is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        if self._images.full():
            raise ServiceBusy(SERVICE_BUSY)
        ticket = self.admission.admit(job.client, CLASSIFY_UNITS)
        future = asyncio.get_running_loop().create_future()
        pending: Pending[ClassifyJob, ClassifyResult] = Pending(job, future, ticket, units=CLASSIFY_UNITS)
        self._images.put_nowait(job.lane, pending)  # type: ignore[arg-type]  # one queue: _run_group tells them apart
        pending.future.add_done_callback(lambda _: self._release_unless_started(pending))
        return await self._await(pending)

    def _others_playing(self, client: str) -> bool:
        """Whether anyone but ``client`` asked for an image within ``dear_quiet_s`` or still has one admitted. The
        server's own jobs count: the ready-round pool refills after players took its rounds, so it stands for them."""
        cutoff = asyncio.get_running_loop().time() - self.dear_quiet_s
        for name in [name for name, at in self._asked_at.items() if at < cutoff]:
            del self._asked_at[name]
        return any(name != client for name in self._asked_at) or self.admission.holds_other_than(client)

    async def explain(self, job: ExplainJob) -> ExplainResult:
        if not self.running:
            raise ServiceUnavailable(SERVICE_DOWN)
        key = explain_key(job)
        cached = self.explanations.get(key)
        if cached is not None:
            return cached
        shared = self._explaining.get(key)
        if shared is not None:  # the same round is being explained for someone else: wait for that one
            shared.waiters += 1
            return await self._await(shared)
        if self._explain_lane.full() or (job.client != SERVER_CLIENT and self._explanation_waits_for(job.client)):
            raise ServiceBusy(SERVICE_BUSY)
        pending: Pending[ExplainJob, ExplainResult] = Pending(job, asyncio.get_running_loop().create_future(), key=key)
        self._explaining[key] = pending
        pending.future.add_done_callback(lambda _: self._explaining.pop(key, None))
        self._explain_lane.put_nowait(job.lane, pending)
        return await self._await(pending)

    def _explanation_waits_for(self, client: str) -> bool:
        """Whether ``client`` already has an explanation waiting: lanes are share keys, the limit is per client."""
        return any(pending.job.client == client for pending in self._explain_lane.items())

    async def _await(self, pending: Pending[Any, Result]) -> Result:
        """The pending's result within the timeout. A caller that leaves (timeout, or its own task cancelled: the
        HTTP client went away) gives the job up; the last caller to leave cancels it, so the worker skips it."""
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), self.timeout_s)
        except TimeoutError:
            self._leave(pending)
            raise ServiceUnavailable(SERVICE_DOWN) from None
        except asyncio.CancelledError:
            self._leave(pending)
            raise

    @staticmethod
    def _leave(pending: Pending[Any, Any]) -> None:
        pending.waiters -= 1
        if pending.waiters <= 0:
            pending.future.cancel()

    def _release(self, pending: Pending[Any, Any]) -> None:
        if pending.ticket is not None and not pending.released:
            pending.released = True
            self.admission.release(pending.ticket)

    def _release_unless_started(self, pending: Pending[Any, Any]) -> None:
        # A job the worker is running holds its units until it ends, even if its caller left.
        if not pending.started:
            self._release(pending)

    # -- the worker's turn -------------------------------------------------------------------------------------

    async def _collect_forever(self) -> None:
        batches_since_explanation = 0
        while True:
            while not len(self._images) and not len(self._explain_lane):
                self._work.clear()
                await self._work.wait()
            explanation_due = batches_since_explanation >= EXPLAIN_EVERY or not len(self._images)
            if len(self._explain_lane) and explanation_due:
                batches_since_explanation = 0
                await self._run_explanation(self._explain_lane.get_nowait())
                continue
            batch = await self._collect_batch()
            batches_since_explanation += 1
            groups: dict[tuple[Any, ...], list[Pending[ImageJob, ImageResult]]] = defaultdict(list)
            for pending in batch:
                groups[pending.job.batch_key].append(pending)
            for group in sorted(groups.values(), key=lambda group: group[0].units):
                await self._run_group(group)
            if len({pending.job.client for pending in batch}) > 1:  # its clients will be back: remember them
                self._contended_at = asyncio.get_running_loop().time()

    async def _collect_batch(self) -> list[Pending[ImageJob, ImageResult]]:
        """Up to ``max_batch`` live jobs, fairly across clients: whatever queued while the last batch ran joins at
        once; then wait briefly for stragglers."""
        loop = asyncio.get_running_loop()
        batch: list[Pending[ImageJob, ImageResult]] = []
        deadline = hold_off = 0.0
        waited = False  # rounds follow one another over what is queued, but not over stragglers arriving one by one
        self._images.new_round()
        while len(batch) < self.max_batch:
            pending = self._take(auto_round=not waited)
            if pending is None and len(self._images) and not batch:
                # Only clients past their fair share wait: give the others a moment to come back, then serve anyway.
                hold_off = hold_off or loop.time() + FAIR_HOLD_OFF_S
                if hold_off - loop.time() > 0:
                    waited = True
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._images.wait_for_arrival(), hold_off - loop.time())
                    continue
                pending = self._images.take_fair(force=True)
            if pending is None:
                remaining = deadline - loop.time()
                if not batch or remaining <= 0:
                    break
                waited = True
                try:
                    await asyncio.wait_for(self._images.wait_for_arrival(), remaining)
                except TimeoutError:
                    break
                continue
            if pending.future.done():  # its caller has gone
                self.jobs_dropped += 1
                continue
            if not batch:
                deadline = loop.time() + self.max_wait_s
            batch.append(pending)
        return batch

    def _take(self, *, auto_round: bool) -> Pending[ImageJob, ImageResult] | None:
        if not len(self._images):
            return None
        now = asyncio.get_running_loop().time()
        if self.admission.clients > 1 or self._images.clients > 1:
            self._contended_at = now
        if now - self._contended_at > CONTENTION_MEMORY_S:  # a lone client: first come, first served
            return self._images.get_nowait()
        return self._images.take_fair(auto_round=auto_round)

    async def _run_group(self, group: list[Pending[ImageJob, ImageResult]]) -> None:
        live = [pending for pending in group if not pending.future.done()]
        self.jobs_dropped += len(group) - len(live)
        if not live:  # every caller has gone while earlier groups ran: do not start it
            return
        for pending in live:
            pending.started = True
        try:
            jobs: list[Any] = [pending.job for pending in live]
            if isinstance(jobs[0], ClassifyJob) and self._compute_classify is not None:
                results: list[Any] = await self._compute_classify(jobs)
            else:
                results = await self._compute_batch(jobs)
        except Exception as exc:  # one bad batch must not kill the collector
            logger.exception("model worker failed on a batch of %d", len(live))
            self.last_error = f"{type(exc).__name__}: {exc}"
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(ServiceUnavailable(SERVICE_DOWN))
            return
        finally:
            for pending in live:
                self._release(pending)
        for pending, result in zip(live, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)

    async def _run_explanation(self, pending: Pending[ExplainJob, ExplainResult]) -> None:
        if pending.future.done():
            return
        try:
            result = await self._compute_explanation(pending.job)
        except Exception as exc:
            if not pending.future.done():
                pending.future.set_exception(exc)
            return
        self.explanations.put(pending.key, result)
        if not pending.future.done():
            pending.future.set_result(result)
