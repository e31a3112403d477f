"""Stats computed once per (what was asked, the newest answer): the stats page, its chart and GET /api/v1/stats
keep their results in a small cache whose keys hold the request's filters and an :class:`AnswersMark`, read from
the database on every request. A new answer (or a together image that reveals, which lets its answers count)
changes the mark, so every key made before it stops matching: nothing is invalidated by hand, and several web
processes over one database agree, each with its own cache. Entries beyond :data:`CACHE_ENTRIES` go, least
recently used first. Concurrent requests for one key compute it once: the others wait for it and read it."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AnswerRecord, SharedRoundRecord
from app.game.disclosure import reveal_cutoff

CACHE_ENTRIES = 128  # a page's numbers, a chart's bytes: a few hundred kB at most each
STATE_ATTRIBUTE = "stats_cache"

T = TypeVar("T")


@dataclass(frozen=True)
class AnswersMark:
    """What the counted answers are now: how many answers there are, the newest one's time and the largest id, and
    how many together images have revealed and the latest reveal (revealing lets a together image's answers
    count without a new answer)."""

    answers: int
    newest: datetime | None
    largest_id: str | None
    revealed: int
    last_reveal: datetime | None


async def answers_mark(session: AsyncSession) -> AnswersMark:
    """Two aggregates, cheap beside loading the trials: one over the answers table alone (its count, and its
    indexed time and id), one over the together images whose reveal has passed (app/game/disclosure.revealed)."""
    answers = select(func.count(AnswerRecord.id), func.max(AnswerRecord.created_at), func.max(AnswerRecord.id))
    count, newest, largest = (await session.execute(answers)).one()
    shown = select(func.count(SharedRoundRecord.id), func.max(SharedRoundRecord.closes_at)).where(
        SharedRoundRecord.closes_at <= reveal_cutoff()
    )
    revealed, last_reveal = (await session.execute(shown)).one()
    return AnswersMark(
        answers=int(count or 0),
        newest=newest,
        largest_id=largest,
        revealed=int(revealed or 0),
        last_reveal=last_reveal,
    )


class StatsCache:
    """A bounded least-recently-used map from keys to computed results; used on the event loop only."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        if entries < 1:
            raise ValueError("a cache needs room for one entry")
        self.entries = entries
        self.results: OrderedDict[Hashable, object] = OrderedDict()
        self.computing: dict[Hashable, asyncio.Lock] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.results)

    def lookup(self, key: Hashable) -> tuple[bool, object]:
        if key not in self.results:
            return False, None
        self.results.move_to_end(key)
        return True, self.results[key]

    def store(self, key: Hashable, value: object) -> None:
        self.results[key] = value
        self.results.move_to_end(key)
        while len(self.results) > self.entries:
            self.results.popitem(last=False)

    async def get_or_compute(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The cached result for ``key``, or ``await compute()`` stored under it. A failed computation stores
        nothing (the next request tries again)."""
        found, value = self.lookup(key)
        if found:
            self.hits += 1
            return cast(T, value)
        lock = self.computing.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                found, value = self.lookup(key)  # another request computed it while this one waited
                if found:
                    self.hits += 1
                    return cast(T, value)
                self.misses += 1
                result = await compute()
                self.store(key, result)
                return result
        finally:
            if self.computing.get(key) is lock and not lock.locked():
                del self.computing[key]


def cache_for(holder: Any) -> StatsCache:
    """The cache kept on ``holder`` (an application's state), made on first use."""
    cache = getattr(holder, STATE_ATTRIBUTE, None)
    if not isinstance(cache, StatsCache):
        cache = StatsCache()
        setattr(holder, STATE_ATTRIBUTE, cache)
    return cache
