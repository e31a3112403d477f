"""FairQueue: one lane per client, served round-robin; a plain bounded FIFO with one client."""

from __future__ import annotations

import asyncio

import pytest

from app.ml.service.fair_queue import FairQueue, Item


def take_in_rounds(queue: FairQueue[Item], count: int) -> list[Item]:
    """What the batcher does: take while a round affords it, then begin the next round."""
    taken: list[Item] = []
    while len(taken) < count:
        item = queue.take_fair(auto_round=False)
        if item is None:
            queue.new_round()
            continue
        taken.append(item)
    return taken


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


def test_deficit_round_robin_serves_a_dear_client_once_its_turns_have_paid_for_its_job() -> None:
    queue: FairQueue[tuple[str, float]] = FairQueue(100, cost=lambda item: item[1], quantum=20)
    queue.put_nowait("greedy", ("g", 100.0))
    for k in range(10):
        queue.put_nowait("a", (f"a{k}", 20.0))
        queue.put_nowait("b", (f"b{k}", 20.0))
    taken = take_in_rounds(queue, 9)
    assert [item[0] for item in taken] == ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3", "g"]


def test_a_client_past_its_share_is_served_only_when_forced() -> None:
    queue: FairQueue[float] = FairQueue(10, cost=lambda units: units, quantum=20)
    queue.put_nowait("greedy", 1500.0)
    assert queue.take_fair() is None, "one turn does not pay for 75 rounds' worth"
    assert queue.take_fair(force=True) == 1500.0, "the worker would idle: serve it anyway"
    assert len(queue) == 0 and queue.take_fair() is None


def test_cheap_jobs_of_one_client_share_one_turn() -> None:
    queue: FairQueue[str] = FairQueue(10, cost=lambda item: 5.0, quantum=20)
    for k in range(5):
        queue.put_nowait("a", f"a{k}")
    queue.put_nowait("b", "b0")
    taken = [queue.take_fair(auto_round=False) for _ in range(6)]
    assert taken == ["a0", "a1", "a2", "a3", "b0", None], "a's turn is spent"
    assert queue.take_fair() == "a4", "the next round"


def test_clients_arriving_one_by_one_each_get_a_turn_before_a_waiting_dear_client_is_credited_again() -> None:
    queue: FairQueue[tuple[str, float]] = FairQueue(100, cost=lambda item: item[1], quantum=20)
    queue.put_nowait("greedy", ("g", 100.0))
    assert queue.take_fair() is None
    served = []
    for k in range(8):  # honest players whose next round arrives after the last one was taken
        queue.put_nowait(f"p{k}", (f"p{k}", 20.0))
        item = queue.take_fair()
        served.append(item[0] if item else None)
    assert served == [f"p{k}" for k in range(8)], "greedy has had one turn (20 units), not one per arrival"
