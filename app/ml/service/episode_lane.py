"""Who runs an episode next on the model worker (issue #19): a bounded, fair lane apart from the image batches.

* Bounded: at most ``capacity`` episodes are admitted at once (running or waiting); one more is refused at once with
  ServiceBusy (503 with Retry-After upstream) instead of queuing behind everyone.
* Fair per client: a client (a player id, ``EpisodeJob.client``) has at most one episode admitted at a time; the
  server's own work (client "": benchmarks, the CLI) is held to the bound only.
* Turns by share: admitted episodes run one at a time, the turn going round their ``lane`` (the share key the game
  gives, one per client address, else the client), in arrival order within a lane; the lane whose episode just ran
  goes to the back. So one address with many players waits its one turn like any other address. The worker thread
  never holds more than one episode in its queue: an image batch waits behind one episode at most (tens of
  milliseconds, benchmarks/RESULTS.md).
* Under a timeout: a caller that waits longer than ``timeout_s`` gets ServiceUnavailable and leaves the lane.

Plain asyncio, no torch: the compute step is handed in, so the policy is tested with fakes."""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict, deque
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
        self._by_client: Counter[str] = Counter()
        self._busy = False  # an episode holds the turn
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()  # by lane, the next first
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
                await self._take_turn(job.lane)
                try:
                    result = await self._compute(job)
                finally:
                    self._pass_turn(job.lane)
        except TimeoutError:
            raise ServiceUnavailable(SERVICE_DOWN) from None
        finally:
            self.admitted -= 1
            self._by_client[job.client] -= 1
            if self._by_client[job.client] <= 0:
                del self._by_client[job.client]
        self.episodes_run += 1
        return result

    async def _take_turn(self, lane: str) -> None:
        if not self._busy:
            self._busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(lane, deque()).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # given the turn just as its caller left: hand it on
                self._pass_turn(lane)
            raise  # otherwise the cancelled turn stays queued and is skipped

    def _pass_turn(self, finished: str) -> None:
        """The turn to the head of the next lane that still waits, ``finished`` (the lane whose episode just ran)
        going to the back; or free when nobody waits."""
        if finished in self._waiting:
            self._waiting.move_to_end(finished)
        while self._waiting:
            lane, turns = next(iter(self._waiting.items()))
            turn = turns.popleft()
            if turns:
                self._waiting.move_to_end(lane)
            else:
                del self._waiting[lane]
            if not turn.done():
                turn.set_result(None)
                return
        self._busy = False
