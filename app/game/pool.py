"""The ready-round pool: rounds for the settings players are actually using, made ahead of time.

A wrapper with the ModelService protocol around any model service (in-process or remote), so the rest of the
server cannot tell it is there. For every *key* in demand -- a job without its image and seed: opponent, attack,
parameters, condition and budget -- it keeps up to ``size`` results ready, made in the background:

* Demand is learnt from the jobs that pass through (each request marks its key, and the staircase steps just
  above and below it, where that player goes next), plus the starting step of the default plan, filled at start.
  A key nobody asked for within ``demand_window_s`` is no longer refilled.
* A job that lets the pool choose its image (``ImageJob.any_image``, the default) and whose key has a ready result
  is answered at once with that result, which carries its own ``image_index`` and ``seed``; the game stores those
  (app/game/rounds.image_columns), so a pooled round regenerates exactly like one made on demand. A job that pins
  its image (``any_image=False``) always goes to the model service.
* Each ready result is handed out once and thrown away after ``ttl_s`` unused.
* Background work never crowds out players: it starts only while no on-demand job is waiting on the model service,
  and in chunks of at most ``chunk`` images (one small batch), so a player who arrives meanwhile waits for one
  small batch at most. When the model service is down or busy the pool backs off and tries again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from app import messages
from app.background import stop_task
from app.config import Settings
from app.errors import ArenaError, ServiceUnavailable
from app.game.catalogue import attack_entry
from app.game.plan import RoundPlan, default_plan, new_job, round_budget, staircase_for, with_fresh_image
from app.ml.service.classify_contracts import (
    ClassifyJob,
    ClassifyResult,
    SmallestJob,
    SmallestResult,
    painter_service,
)
from app.ml.service.contracts import AttackCatalog, ImageJob, ImageResult, ModelService, OpponentInfo
from app.ml.service.episode_contracts import EpisodeJob, EpisodeResult, EpisodeService
from app.ml.service.explain_contracts import ExplainJob, ExplainResult
from app.ml.service.text_contracts import TextClassifyResult, TextJob, TextOpponentInfo, TextResult
from app.ml.service.text_edit_contracts import TextSimilarityResult, TextSimilarityService

logger = logging.getLogger(__name__)


def pool_key(job: ImageJob) -> ImageJob:
    """The job with its image and seed blanked: what makes two jobs interchangeable for a player."""
    return dataclasses.replace(job, image_index=-1, seed=0, any_image=True, client="")


@dataclass
class _Ready:
    result: ImageResult
    expires: float


class ReadyRoundPool:
    def __init__(
        self,
        inner: ModelService,
        *,
        size: int,
        ttl_s: float,
        prefill: Callable[[ModelService], Iterable[ImageJob]] | None = None,
        neighbours: Callable[[ModelService, ImageJob], Iterable[ImageJob]] | None = None,
        demand_window_s: float | None = None,
        max_keys: int = 32,
        chunk: int = 4,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1 or ttl_s <= 0 or chunk < 1:
            raise ValueError("a ready-round pool needs size >= 1, ttl_s > 0 and chunk >= 1")
        self.inner = inner
        self.size = size
        self.ttl_s = ttl_s
        self.demand_window_s = demand_window_s if demand_window_s is not None else ttl_s
        self.max_keys = max_keys
        self.chunk = chunk
        self.retry_s = retry_s
        self._prefill = prefill
        self._neighbours = neighbours
        self._clock = clock
        self._ready: dict[ImageJob, deque[_Ready]] = {}
        self._demand: OrderedDict[ImageJob, float] = OrderedDict()  # key -> last time it (or a neighbour) was asked
        self._pinned: list[ImageJob] = []  # prefilled keys: always in demand
        self._prefilled = prefill is None
        self._on_demand = 0
        self._idle = asyncio.Event()
        self._wake = asyncio.Event()
        self._refiller: asyncio.Task[None] | None = None
        self.stats = {"hits": 0, "misses": 0, "made": 0, "expired": 0, "failed": 0}

    # -- the protocol ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.inner.start()
        self._idle = asyncio.Event()
        self._idle.set()
        self._wake = asyncio.Event()
        self._wake.set()  # prefill at once: the first player may be seconds away
        self._refiller = asyncio.create_task(self._refill_forever(), name="ready-round-pool")

    async def stop(self) -> None:
        await stop_task(self._refiller)
        self._refiller = None
        await self.inner.stop()

    def opponent_info(self, name: str) -> OpponentInfo:
        return self.inner.opponent_info(name)

    def opponent_names(self) -> list[str]:
        return self.inner.opponent_names()

    def attack_catalog(self) -> AttackCatalog:
        return self.inner.attack_catalog()

    async def generate(self, job: ImageJob) -> ImageResult:
        if job.any_image:
            key = pool_key(job)
            self._note_demand(key)
            ready = self._take(key)
            self._wake.set()
            if ready is not None:
                self.stats["hits"] += 1
                return dataclasses.replace(ready, made_ahead=True)
            self.stats["misses"] += 1
        self._on_demand += 1
        self._idle.clear()
        try:
            return await self.inner.generate(job)
        finally:
            self._on_demand -= 1
            if self._on_demand == 0:
                self._idle.set()

    async def until_idle(self) -> None:
        """Return once no on-demand job is waiting on the model service: when background work may start."""
        await self._idle.wait()

    async def explain(self, job: ExplainJob) -> ExplainResult:
        return await self.inner.explain(job)

    async def text_similarity(self, original: str, edited: str, client: str = "") -> TextSimilarityResult:
        return await cast(TextSimilarityService, self.inner).text_similarity(original, edited, client)

    # Text rounds are not pooled: straight to the service's text lane.
    async def text(self, job: TextJob) -> TextResult:
        return await self.inner.text(job)

    async def classify_text(
        self, opponent: str, texts: list[str], client: str = "", share: str = ""
    ) -> TextClassifyResult:
        return await self.inner.classify_text(opponent, texts, client, share)

    async def text_opponents(self) -> tuple[TextOpponentInfo, ...]:
        return await self.inner.text_opponents()

    async def run_episode(self, job: EpisodeJob) -> EpisodeResult:
        """Episodes (app/game/policy.py) are never made ahead: straight to the model service, if it runs them."""
        if not isinstance(self.inner, EpisodeService):
            raise ServiceUnavailable(messages.POLICY_UNSUPPORTED)
        return await self.inner.run_episode(job)

    async def classify(self, job: ClassifyJob) -> ClassifyResult:
        """Painters' answers (issue #21) are never made ahead: straight to the service behind the pool."""
        return await painter_service(self.inner).classify(job)

    async def smallest_attack(self, job: SmallestJob) -> SmallestResult:
        return await painter_service(self.inner).smallest_attack(job)

    async def health(self) -> dict[str, Any]:
        health = dict(await self.inner.health())
        now = self._clock()
        health["pool"] = {
            "size": self.size,
            "ttl_s": self.ttl_s,
            "ready": sum(1 for items in self._ready.values() for item in items if item.expires > now),
            "keys": len(self._wanted_keys(now)),
            **self.stats,
        }
        return health

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def ready_count(self, job: ImageJob) -> int:
        now = self._clock()
        return sum(1 for item in self._ready.get(pool_key(job), ()) if item.expires > now)

    def _take(self, key: ImageJob) -> ImageResult | None:
        items = self._ready.get(key)
        now = self._clock()
        while items:
            item = items.popleft()
            if item.expires > now:
                return item.result
            self.stats["expired"] += 1
        return None

    def _note_demand(self, key: ImageJob) -> None:
        now = self._clock()
        related = [key]
        if self._neighbours is not None:
            with contextlib.suppress(ArenaError, KeyError, ValueError):
                related += list(self._neighbours(self.inner, key))
        for item in related:
            self._demand[item] = now
            self._demand.move_to_end(item)
        self._demand.move_to_end(key)  # the key itself first in line, then the steps around it
        while len(self._demand) > self.max_keys:
            self._demand.popitem(last=False)

    def _wanted_keys(self, now: float) -> list[ImageJob]:
        recent = [key for key, seen in reversed(self._demand.items()) if now - seen <= self.demand_window_s]
        return recent + [key for key in self._pinned if key not in recent]

    def _expire(self, now: float) -> None:
        for key, items in list(self._ready.items()):
            fresh = deque(item for item in items if item.expires > now)
            self.stats["expired"] += len(items) - len(fresh)
            if fresh:
                self._ready[key] = fresh
            else:
                del self._ready[key]

    def _next_chunk(self, now: float) -> list[ImageJob]:
        """Up to ``chunk`` jobs for the keys most recently asked for that are short of ready results; jobs that
        can share a batch (same opponent, attack, parameters) are taken together."""
        wanted = [(key, self.size - len(self._ready.get(key, ()))) for key in self._wanted_keys(now)]
        wanted = [(key, missing) for key, missing in wanted if missing > 0]
        if not wanted:
            return []
        batch_key = wanted[0][0].batch_key
        jobs: list[ImageJob] = []
        for key, missing in wanted:
            if key.batch_key != batch_key:
                continue
            info = self.inner.opponent_info(key.opponent)
            jobs += [with_fresh_image(key, info) for _ in range(min(missing, self.chunk - len(jobs)))]
            if len(jobs) >= self.chunk:
                break
        return jobs

    # -- the background refill ---------------------------------------------------------------------------------

    async def _refill_forever(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow stop()'s cancel when the event fires.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self.ttl_s / 4, 5.0)):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._refill_once()
            except ArenaError as error:  # the model service is down or busy: try again later
                self.stats["failed"] += 1
                logger.info("ready-round pool: refill postponed (%s)", error.message)
                await asyncio.sleep(self.retry_s)
            except Exception:
                logger.exception("ready-round pool: refill failed")
                await asyncio.sleep(self.retry_s)

    async def _refill_once(self) -> None:
        if not self._prefilled and self._prefill is not None:
            self._pinned = [pool_key(job) for job in self._prefill(self.inner)]
            self._prefilled = True
        while True:
            await self.until_idle()  # players first
            now = self._clock()
            self._expire(now)
            jobs = self._next_chunk(now)
            if not jobs:
                return
            outcomes = await asyncio.gather(*(self.inner.generate(job) for job in jobs), return_exceptions=True)
            expires = self._clock() + self.ttl_s
            failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
            for job, outcome in zip(jobs, outcomes, strict=True):
                if isinstance(outcome, ImageResult):
                    # The result names the image it shows, whatever the backend echoed.
                    result = dataclasses.replace(outcome, image_index=job.image_index, seed=job.seed)
                    self._ready.setdefault(pool_key(job), deque()).append(_Ready(result, expires))
                    self.stats["made"] += 1
            if failures:
                raise failures[0]


# -- what the game asks for ----------------------------------------------------------------------------------------


def starting_jobs(plan: RoundPlan) -> Callable[[ModelService], list[ImageJob]]:
    """The job a new player's first round asks for under ``plan``: the staircase's lowest step, as start_round
    makes it."""

    def prefill(source: ModelService) -> list[ImageJob]:
        info = source.opponent_info(plan.opponent)
        attack = attack_entry(source, plan.attack)
        eps = staircase_for(info).eps(0)
        return [new_job(plan, info, round_budget(attack["norm"], eps, info))]

    return prefill


def staircase_neighbours(source: ModelService, key: ImageJob) -> list[ImageJob]:
    """The steps above and below a key's budget on its opponent's staircase: where a player at that step goes
    after one answer. A budget off the staircase (an event's own) has none."""
    info = source.opponent_info(key.opponent)
    attack = attack_entry(source, key.attack)
    budgets = [round_budget(attack["norm"], eps, info) for eps in staircase_for(info).levels]
    if key.eps not in budgets:
        return []
    step = budgets.index(key.eps)
    return [dataclasses.replace(key, eps=budgets[j]) for j in (step - 1, step + 1) if 0 <= j < len(budgets)]


def with_ready_round_pool(service: ModelService, settings: Settings) -> ModelService:
    """``service`` behind a ready-round pool when ARENA_READY_ROUNDS > 0, prefilled with the default plan's first
    step; ``service`` itself when the pool is off."""
    if settings.ready_rounds <= 0:
        return service
    plan = default_plan(settings)
    return ReadyRoundPool(
        service,
        size=settings.ready_rounds,
        ttl_s=settings.ready_round_ttl_s,
        prefill=starting_jobs(plan),
        neighbours=staircase_neighbours,
    )
