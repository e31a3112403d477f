"""The in-process side of ``text_similarity``: edits from every player, gathered for a few milliseconds and encoded
in one all-MiniLM-L6-v2 batch on the model worker thread (the thread that owns the models and the encoder's cache).

A live editor asks once per pause in typing, so many players' checks arrive close together: one encoder call for
all of them costs little more than one for a single pair, and the originals are in the encoder's cache after the
first ask. The queue is bounded (ServiceBusy beyond it), and a caller that leaves has its job skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from app.errors import ServiceBusy, ServiceUnavailable
from app.messages import SERVICE_BUSY, SERVICE_DOWN
from app.ml.service.text_edit_contracts import TextSimilarityJob, TextSimilarityResult
from app.ml.text.attacks import SYNONYM_FLOOR
from app.ml.text.encoder import SentenceEncoder, sentence_encoder

logger = logging.getLogger(__name__)

MAX_PENDING = 256
MAX_BATCH = 64  # pairs per encoder call (128 texts, the encoder's batches of 64)


@dataclass
class PendingSimilarity:
    job: TextSimilarityJob
    future: asyncio.Future[TextSimilarityResult]


def similarities(encoder: SentenceEncoder, jobs: list[TextSimilarityJob]) -> list[float]:
    """Cosine of each job's two texts, every text of the batch in one encoder call (identical texts: exactly 1)."""
    vectors = encoder.encode([text for job in jobs for text in (job.original, job.edited)])
    pairs = vectors.reshape(len(jobs), 2, -1).astype(np.float64)
    cosines = np.einsum("ij,ij->i", pairs[:, 0], pairs[:, 1])
    return [1.0 if job.original == job.edited else float(min(1.0, c)) for job, c in zip(jobs, cosines, strict=True)]


class SimilarityBatcher:
    """Gathers jobs for ``max_wait_s`` after the first one arrives, then runs them together on ``executor``."""

    def __init__(
        self,
        executor: Executor,
        *,
        max_wait_s: float = 0.005,
        timeout_s: float = 30.0,
        encoder: Callable[[], SentenceEncoder] = sentence_encoder,
        floor: float = SYNONYM_FLOOR,
    ) -> None:
        self.executor = executor
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        self.encoder = encoder
        self.floor = floor
        self.pending: list[PendingSimilarity] = []
        self.flusher: asyncio.Task[None] | None = None
        self.batches_run = 0
        self.jobs_run = 0

    async def similarity(self, job: TextSimilarityJob) -> TextSimilarityResult:
        job.validate()
        if len(self.pending) >= MAX_PENDING:
            raise ServiceBusy(SERVICE_BUSY)
        future: asyncio.Future[TextSimilarityResult] = asyncio.get_running_loop().create_future()
        self.pending.append(PendingSimilarity(job, future))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self.flush_soon(), name="text-similarity-batch")
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            future.cancel()
            raise ServiceUnavailable(SERVICE_DOWN) from None
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def flush_soon(self) -> None:
        await asyncio.sleep(self.max_wait_s)
        while self.pending:
            batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
            live = [p for p in batch if not p.future.done()]
            if not live:
                continue
            jobs = [p.job for p in live]
            try:
                values = await asyncio.get_running_loop().run_in_executor(
                    self.executor, similarities, self.encoder(), jobs
                )
            except Exception as error:  # one bad batch must not leave its callers waiting
                logger.exception("text similarity failed on a batch of %d", len(jobs))
                for p in live:
                    if not p.future.done():
                        p.future.set_exception(ServiceUnavailable(f"{SERVICE_DOWN} ({type(error).__name__})"))
                continue
            self.batches_run += 1
            self.jobs_run += len(jobs)
            for p, value in zip(live, values, strict=True):
                if not p.future.done():
                    p.future.set_result(TextSimilarityResult(similarity=value, floor=self.floor))

    def stop(self) -> None:
        if self.flusher is not None:
            self.flusher.cancel()
        for p in self.pending:
            if not p.future.done():
                p.future.set_exception(ServiceUnavailable(SERVICE_DOWN))
        self.pending = []
