"""The text lane of the in-process model service: text rounds and classifications, batched and fair.

Like the image scheduler (app/ml/service/scheduler.py), and beside it: a job is admitted against the same compute
budget (app/ml/service/admission.py; a text round is held at one default round's units, a classification at one
unit per text, a policy rather than a measurement), queued in a bounded queue that takes turns between clients
(app/ml/service/fair_queue.py; by share key when the caller gives one, so that clients behind one key share its
turns), and collected into batches of up to ``max_batch`` jobs that are split into groups of one kind
(``TextJob.batch_key``, or one opponent's classifications, which run as one call of the model). Each group is handed
to the service's single worker thread, the one that runs the image batches, so text and images never run at once.
A job whose caller has gone is dropped before it runs. Plain asyncio, no torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from app.background import stop_task
from app.errors import ServiceBusy, ServiceUnavailable
from app.messages import SERVICE_BUSY, SERVICE_DOWN
from app.ml.service.admission import AdmissionBudget
from app.ml.service.cost import DEFAULT_ROUND_UNITS
from app.ml.service.fair_queue import FairQueue
from app.ml.service.scheduler import Pending
from app.ml.service.text_contracts import TextClassifyResult, TextJob, TextResult

logger = logging.getLogger(__name__)

RunTexts = Callable[[list[TextJob]], Awaitable[list[TextResult]]]
RunClassify = Callable[[str, list[list[str]]], Awaitable[list[TextClassifyResult]]]
TEXT_ROUND_UNITS = DEFAULT_ROUND_UNITS
CLASSIFY_UNITS_PER_TEXT = 1.0


class ClassifyJob:
    def __init__(self, opponent: str, texts: list[str], client: str) -> None:
        self.opponent, self.texts, self.client = opponent, texts, client

    @property
    def batch_key(self) -> tuple[str, str]:
        return ("classify", self.opponent)


TextPending = Pending[Any, Any]


class TextLane:
    def __init__(
        self,
        run_texts: RunTexts,
        run_classify: RunClassify,
        *,
        max_batch: int,
        max_wait_s: float,
        queue_size: int,
        timeout_s: float,
        admission: AdmissionBudget,
    ) -> None:
        self._run_texts = run_texts
        self._run_classify = run_classify
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        self.admission = admission
        self._work = asyncio.Event()
        self._queue: FairQueue[TextPending] = FairQueue(queue_size, self._work)
        self._collector: asyncio.Task[None] | None = None
        self.batches_run = 0
        self.jobs_dropped = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._collector = asyncio.create_task(self._collect_forever(), name="model-service-text-lane")

    @property
    def running(self) -> bool:
        return self._collector is not None and not self._collector.done()

    async def stop(self) -> None:
        await stop_task(self._collector)
        self._collector = None
        for pending in self._queue.drain():
            if not pending.future.done():
                pending.future.set_exception(ServiceUnavailable(SERVICE_DOWN))
            self._release(pending)

    # -- requests ----------------------------------------------------------------------------------------------

    async def text(self, job: TextJob) -> TextResult:
        result: TextResult = await self._submit(job, job.client, job.lane, TEXT_ROUND_UNITS)
        return result

    async def classify(self, opponent: str, texts: list[str], client: str, share: str = "") -> TextClassifyResult:
        """``share``: whose turns the classification takes (as TextJob.share); "" means the client's own."""
        units = CLASSIFY_UNITS_PER_TEXT * len(texts)
        job = ClassifyJob(opponent, texts, client)
        result: TextClassifyResult = await self._submit(job, client, share or client, units)
        return result

    async def _submit(self, job: Any, client: str, lane: str, units: float) -> Any:
        """Admitted against ``client``'s budget, queued in ``lane``'s turns."""
        if not self.running:
            raise ServiceUnavailable(SERVICE_DOWN)
        if self._queue.full():
            raise ServiceBusy(SERVICE_BUSY)
        ticket = self.admission.admit(client, units)
        pending: TextPending = Pending(job, asyncio.get_running_loop().create_future(), ticket, units=units)
        self._queue.put_nowait(lane, pending)
        pending.future.add_done_callback(lambda _: None if pending.started else self._release(pending))
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), self.timeout_s)
        except TimeoutError:
            pending.future.cancel()
            raise ServiceUnavailable(SERVICE_DOWN) from None
        except asyncio.CancelledError:
            pending.future.cancel()
            raise

    def _release(self, pending: TextPending) -> None:
        if pending.ticket is not None and not pending.released:
            pending.released = True
            self.admission.release(pending.ticket)

    # -- the worker's turn -------------------------------------------------------------------------------------

    async def _collect_forever(self) -> None:
        while True:
            while not len(self._queue):
                self._work.clear()
                await self._work.wait()
            batch = await self._collect_batch()
            groups: dict[Hashable, list[TextPending]] = defaultdict(list)
            for pending in batch:
                groups[pending.job.batch_key].append(pending)
            for group in groups.values():
                await self._run_group(group)

    async def _collect_batch(self) -> list[TextPending]:
        """Up to ``max_batch`` live jobs, one per client in turn; then a short wait for stragglers."""
        loop = asyncio.get_running_loop()
        batch: list[TextPending] = []
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not len(self._queue):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queue.wait_for_arrival(), remaining)
                continue
            pending = self._queue.get_nowait()
            if pending.future.done():
                self.jobs_dropped += 1
                continue
            batch.append(pending)
        return batch

    async def _run_group(self, group: list[TextPending]) -> None:
        live = [pending for pending in group if not pending.future.done()]
        self.jobs_dropped += len(group) - len(live)
        if not live:
            return
        for pending in live:
            pending.started = True
        first = live[0].job
        try:
            if isinstance(first, ClassifyJob):
                results: list[Any] = await self._run_classify(first.opponent, [p.job.texts for p in live])
            else:
                results = await self._run_texts([p.job for p in live])
        except ServiceUnavailable as exc:  # a refusal (an opponent not loaded): the callers hear why
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        except Exception as exc:  # one bad batch must not kill the collector
            logger.exception("model worker failed on a text batch of %d", len(live))
            self.last_error = f"{type(exc).__name__}: {exc}"
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(ServiceUnavailable(SERVICE_DOWN))
            return
        finally:
            for pending in live:
                self._release(pending)
        self.batches_run += 1
        for pending, result in zip(live, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)
