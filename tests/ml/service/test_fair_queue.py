"""FairQueue: one lane per client, served round-robin; a plain bounded FIFO with one client."""

from __future__ import annotations

import asyncio

import pytest

from app.ml.service.fair_queue import FairQueue


def test_one_client_is_first_in_first_out_and_the_queue_is_bounded() -> None:
    queue: FairQueue[int] = FairQueue(3)
    for item in range(3):
        queue.put_nowait("", item)
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait("other", 9)
    assert [queue.get_nowait() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


def test_clients_take_turns() -> None:
    queue: FairQueue[str] = FairQueue(100)
    for k in range(64):
        queue.put_nowait("greedy", f"g{k}")
    queue.put_nowait("honest", "h")
    queue.put_nowait("late", "l")
    assert [queue.get_nowait() for _ in range(5)] == ["g0", "h", "l", "g1", "g2"]
    assert queue.holds("greedy") and not queue.holds("honest") and len(queue) == 61
