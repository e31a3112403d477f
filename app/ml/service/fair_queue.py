"""A bounded queue that takes turns between clients: one lane per client key, so a client with 64 jobs queued
delays another client's single job by at most one of its own, not by all 64. Within a lane jobs keep their order;
with one client it is a plain FIFO queue. For the batcher on the event loop (not thread-safe).

Two ways to take: ``get_nowait`` goes round-robin by jobs; ``take_fair`` is deficit round-robin by cost (Shreedhar
and Varghese, 1995): each visit to a lane credits it ``quantum`` units, and its head job leaves once the lane's
credit covers the job's cost, so a client whose jobs cost nine default rounds is served once every nine turns of
the others. A lane's credit is forgotten when it empties. A lane that arrives during a round joins it before the
lanes already visited in it. A new round begins when every lane has had its turn, if the caller allows it
(``auto_round``), or when the caller says so (``new_round``): the batcher lets rounds follow one another while it
takes jobs that are already queued, but not while it waits for stragglers, so a client gets one turn per round
however many others arrive one by one."""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class FairQueue(Generic[Item]):
    def __init__(
        self,
        maxsize: int,
        arrived: asyncio.Event | None = None,
        *,
        cost: Callable[[Item], float] = lambda _: 1.0,
        quantum: float = 1.0,
    ) -> None:
        """``arrived`` is set on every put: pass one event to several queues to wait for work on any of them."""
        self.maxsize = maxsize
        self._lanes: OrderedDict[str, deque[Item]] = OrderedDict()  # the next client to serve first
        self._size = 0
        self._arrived = arrived or asyncio.Event()
        self._cost = cost
        self.quantum = quantum
        self._credit: dict[str, float] = {}
        self._visiting: str | None = None  # the lane whose visit has been credited and goes on
        self._visited: set[str] = set()  # lanes credited in the current round

    def __len__(self) -> int:
        return self._size

    def full(self) -> bool:
        return self._size >= self.maxsize

    def holds(self, client: str) -> bool:
        return client in self._lanes

    @property
    def clients(self) -> int:
        return len(self._lanes)

    def put_nowait(self, client: str, item: Item) -> None:
        if self.full():
            raise asyncio.QueueFull
        lane = self._lanes.get(client)
        if lane is None:
            lane = self._lanes[client] = deque()  # a new client joins at the end of the round
            for visited in [name for name in self._lanes if name in self._visited]:
                self._lanes.move_to_end(visited)
        lane.append(item)
        self._size += 1
        self._arrived.set()

    def get_nowait(self) -> Item:
        """The head of the next client's lane; that client then goes to the back of the rotation."""
        if not self._lanes:
            raise asyncio.QueueEmpty
        client = next(iter(self._lanes))
        self._visiting = None
        return self._pop(client, rotate=True)

    def take_fair(self, *, force: bool = False, auto_round: bool = True) -> Item | None:
        """The next job by deficit round-robin, or None when a whole round of visits affords none. ``force``: then
        advance every lane by as many rounds as the cheapest wait takes, so that one is served (the worker would
        otherwise idle)."""
        if not self._lanes:
            return None
        for _ in range(len(self._lanes)):
            client = next(iter(self._lanes))
            if self._visiting != client:
                if client in self._visited:  # every lane has had its turn in this round
                    if not auto_round:
                        break
                    self._visited.clear()
                self._visited.add(client)
                self._visiting = client
                self._credit[client] = self._credit.get(client, 0.0) + self.quantum
            head = self._cost(self._lanes[client][0])
            if head <= self._credit[client]:
                self._credit[client] -= head
                lane = self._lanes[client]
                ends_visit = len(lane) == 1 or self._cost(lane[1]) > self._credit[client]
                if ends_visit:
                    self._visiting = None
                return self._pop(client, rotate=ends_visit)
            self._visiting = None
            self._lanes.move_to_end(client)
        if not force:
            return None
        rounds = min(
            math.ceil((self._cost(lane[0]) - self._credit.get(client, 0.0)) / self.quantum)
            for client, lane in self._lanes.items()
        )
        for client in self._lanes:
            self._credit[client] = self._credit.get(client, 0.0) + max(rounds - 1, 0) * self.quantum
        self.new_round()
        return self.take_fair(force=True)

    def new_round(self) -> None:
        """Every lane may be credited once more. A lane still in its visit (cheap jobs: its credit outlasted the
        batch) goes to the back with what credit it has left, else it would head every round and be credited first
        each time, and the other lanes would wait for as many of its jobs as it has queued."""
        if self._visiting is not None and self._visiting in self._lanes:
            self._lanes.move_to_end(self._visiting)
        self._visited.clear()
        self._visiting = None

    def _pop(self, client: str, *, rotate: bool) -> Item:
        lane = self._lanes[client]
        item = lane.popleft()
        self._size -= 1
        if not lane:
            del self._lanes[client]
            self._credit.pop(client, None)
            self._visited.discard(client)
            if self._visiting == client:
                self._visiting = None
        elif rotate:
            self._lanes.move_to_end(client)
        return item

    async def wait_for_arrival(self) -> None:
        self._arrived.clear()
        await self._arrived.wait()

    def items(self) -> list[Item]:
        """Every queued item, lane by lane (for a check over a small queue; nothing is taken)."""
        return [item for lane in self._lanes.values() for item in lane]

    def drain(self) -> list[Item]:
        items = [item for lane in self._lanes.values() for item in lane]
        self._lanes.clear()
        self._credit.clear()
        self._visited.clear()
        self._visiting = None
        self._size = 0
        return items
