"""Who runs an episode next on the model worker (issue #19): a bounded, fair lane apart from the image batches.

* Bounded: at most ``capacity`` episodes are admitted at once (running or waiting); one more is refused at once with
  ServiceBusy (503 with Retry-After upstream) instead of queuing behind everyone.
* Fair per client: a client (a player id, ``EpisodeJob.client``) has at most one episode admitted at a time; the
  server's own work (client "": benchmarks, the CLI) is held to the bound only. Admitted episodes run one at a time
  in arrival order (asyncio's lock wakes its waiters first in, first out), so with one episode per client the turn
  goes round the clients, and the worker thread never holds more than one episode in its queue: an image batch
  waits behind one episode at most (tens of milliseconds, benchmarks/RESULTS.md).
* Under a timeout: a caller that waits longer than ``timeout_s`` gets ServiceUnavailable and leaves the lane.

Plain asyncio, no torch: the compute step is handed in, so the policy is tested with fakes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from app.errors import ServiceBusy, ServiceUnavailable
from app.messages import SERVICE_BUSY, SERVICE_DOWN
from app.ml.service.admission import SERVER_CLIENT
from app.ml.service.episode_contracts import EpisodeJob, EpisodeResult

DEFAULT_CAPACITY = 16

ComputeEpisode = Callable[[EpisodeJob], Awaitable[EpisodeResult]]


class EpisodeLane:
    def __init__(self, compute: ComputeEpisode, *, capacity: int = DEFAULT_CAPACITY, timeout_s: float = 30.0) -> None:
        if capacity < 1:
            raise ValueError("an episode lane needs capacity >= 1")
        self._compute = compute
        self.capacity = capacity
        self.timeout_s = timeout_s
        self._turn = asyncio.Lock()
        self._by_client: Counter[str] = Counter()
        self.admitted = 0
        self.refused = 0
        self.episodes_run = 0

    async def run(self, job: EpisodeJob) -> EpisodeResult:
        if self.admitted >= self.capacity or (job.client != SERVER_CLIENT and self._by_client[job.client]):
            self.refused += 1
            raise ServiceBusy(SERVICE_BUSY)
        self.admitted += 1
        self._by_client[job.client] += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._turn:
                    result = await self._compute(job)
        except TimeoutError:
            raise ServiceUnavailable(SERVICE_DOWN) from None
        finally:
            self.admitted -= 1
            self._by_client[job.client] -= 1
            if self._by_client[job.client] <= 0:
                del self._by_client[job.client]
        self.episodes_run += 1
        return result
