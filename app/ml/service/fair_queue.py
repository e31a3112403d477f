"""A bounded queue that takes turns between clients: one lane per client key, served round-robin, so a client with
64 jobs queued delays another client's single job by at most one of its own, not by all 64. Within a lane jobs keep
their order; with one client it is a plain FIFO queue. For the batcher on the event loop (not thread-safe)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import Generic, TypeVar

Item = TypeVar("Item")


class FairQueue(Generic[Item]):
    def __init__(self, maxsize: int, arrived: asyncio.Event | None = None) -> None:
        """``arrived`` is set on every put: pass one event to several queues to wait for work on any of them."""
        self.maxsize = maxsize
        self._lanes: OrderedDict[str, deque[Item]] = OrderedDict()  # the next client to serve first
        self._size = 0
        self._arrived = arrived or asyncio.Event()

    def __len__(self) -> int:
        return self._size

    def full(self) -> bool:
        return self._size >= self.maxsize

    def holds(self, client: str) -> bool:
        return client in self._lanes

    def put_nowait(self, client: str, item: Item) -> None:
        if self.full():
            raise asyncio.QueueFull
        lane = self._lanes.get(client)
        if lane is None:
            lane = self._lanes[client] = deque()  # a new client joins at the end of the rotation
        lane.append(item)
        self._size += 1
        self._arrived.set()

    def get_nowait(self) -> Item:
        """The head of the next client's lane; that client then goes to the back of the rotation."""
        if not self._lanes:
            raise asyncio.QueueEmpty
        client, lane = next(iter(self._lanes.items()))
        item = lane.popleft()
        self._size -= 1
        if lane:
            self._lanes.move_to_end(client)
        else:
            del self._lanes[client]
        return item

    async def get(self) -> Item:
        while not self._lanes:
            self._arrived.clear()
            await self._arrived.wait()
        return self.get_nowait()

    def drain(self) -> list[Item]:
        items = [item for lane in self._lanes.values() for item in lane]
        self._lanes.clear()
        self._size = 0
        return items
