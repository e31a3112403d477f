"""The in-process hub and the SSE loop behind the big screen, without a server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from app import live

pytestmark = pytest.mark.anyio


class Source:
    """Builds a snapshot from a counter, and counts how often it was asked to."""

    def __init__(self) -> None:
        self.value = 0
        self.builds = 0
        self.wake_at: datetime | None = None

    async def build(self) -> live.Snapshot:
        self.builds += 1
        await asyncio.sleep(0.01)  # a database round trip
        return live.Snapshot(key=str(self.value), events=(("tally", f"<b>{self.value}</b>"),), wake_at=self.wake_at)


async def next_message(body: AsyncIterator[str], timeout: float = 2.0) -> str:
    return await asyncio.wait_for(body.__anext__(), timeout)


def connected() -> tuple[list[bool], object]:
    flag = [False]

    async def is_disconnected() -> bool:
        return flag[0]

    return flag, is_disconnected


async def test_screen_gets_the_state_at_once_then_each_change_within_a_second() -> None:
    hub, source = live.EventHub(), Source()
    flag, is_disconnected = connected()
    body = live.stream(hub, "ABCDEF", kind="screen", build=source.build, is_disconnected=is_disconnected)
    assert (await next_message(body)).startswith("retry:")
    assert await next_message(body) == "event: tally\ndata: <b>0</b>\n\n"
    assert hub.subscribers("ABCDEF") == 1
    source.value = 1
    started = time.perf_counter()
    hub.publish("ABCDEF")
    assert await next_message(body) == "event: tally\ndata: <b>1</b>\n\n"
    assert time.perf_counter() - started < 1.0
    flag[0] = True
    hub.publish("ABCDEF")
    with pytest.raises(StopAsyncIteration):
        while True:
            await next_message(body)
    assert hub.subscribers("ABCDEF") == 0, "the subscription ends with the stream"


async def test_idle_streams_send_heartbeats_and_unchanged_state_is_not_resent() -> None:
    hub, source = live.EventHub(), Source()
    _flag, is_disconnected = connected()
    body = live.stream(
        hub, "ABCDEF", kind="screen", build=source.build, is_disconnected=is_disconnected, heartbeat_s=0.2
    )
    await next_message(body)
    await next_message(body)
    hub.publish("ABCDEF")  # nothing visible changed
    assert (await next_message(body)).startswith("event: heartbeat\n")
    await body.aclose()


async def test_three_screens_share_one_build_per_change() -> None:
    hub, source = live.EventHub(), Source()
    _flag, is_disconnected = connected()
    bodies = [
        live.stream(hub, "ABCDEF", kind="screen", build=source.build, is_disconnected=is_disconnected) for _ in range(3)
    ]
    for body in bodies:
        await next_message(body)
    first = await asyncio.gather(*(next_message(body) for body in bodies))
    assert len(set(first)) == 1 and source.builds == 1
    source.value = 5
    for _ in range(10):  # a burst of answers
        hub.publish("ABCDEF")
    updates = await asyncio.gather(*(next_message(body) for body in bodies))
    assert set(updates) == {"event: tally\ndata: <b>5</b>\n\n"}
    assert source.builds == 2, "one build for the burst, shared by the three screens"
    for body in bodies:
        await body.aclose()


async def test_phones_hear_only_status_changes() -> None:
    hub, source = live.EventHub(), Source()
    _flag, is_disconnected = connected()
    body = live.stream(hub, "ABCDEF", kind="player", build=source.build, is_disconnected=is_disconnected)
    await next_message(body)
    await next_message(body)
    source.value = 1
    hub.publish("ABCDEF")  # an answer: phones stay quiet
    waiting = asyncio.ensure_future(next_message(body, timeout=0.5))
    with pytest.raises(TimeoutError):
        await waiting
    body = live.stream(hub, "ABCDEF", kind="player", build=source.build, is_disconnected=is_disconnected)
    await next_message(body)
    await next_message(body)
    source.value = 2
    hub.publish("ABCDEF", status=True)
    assert await next_message(body) == "event: tally\ndata: <b>2</b>\n\n"
    await body.aclose()


async def test_a_countdown_ending_refreshes_without_a_publish() -> None:
    hub, source = live.EventHub(), Source()
    source.wake_at = datetime.now(UTC) + timedelta(seconds=0.3)
    _flag, is_disconnected = connected()
    body = live.stream(hub, "ABCDEF", kind="screen", build=source.build, is_disconnected=is_disconnected)
    await next_message(body)
    await next_message(body)
    source.value, source.wake_at = 9, None
    assert await next_message(body, timeout=1.5) == "event: tally\ndata: <b>9</b>\n\n"
    await body.aclose()


def test_multi_line_data_becomes_several_data_lines() -> None:
    assert (
        live.sse_message("board", "<ol>\n<li>a</li>\n</ol>")
        == "event: board\ndata: <ol>\ndata: <li>a</li>\ndata: </ol>\n\n"
    )
    assert live.sse_message("heartbeat", "") == "event: heartbeat\ndata: \n\n"


def test_data_lines_split_only_where_an_event_source_splits_them() -> None:
    # SSE ends a line at \r\n, \r or \n, nothing else: U+2028, U+0085 or \x0c inside a fragment are data.
    assert live.sse_message("board", "a\u2028b\x85c\x0cd") == "event: board\ndata: a\u2028b\x85c\x0cd\n\n"
    assert live.sse_message("board", "a\rb\r\nc\nd") == "event: board\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    assert live.sse_message("board", "a\n") == "event: board\ndata: a\ndata: \n\n", "a trailing line end is kept"


def test_the_cloak_stream_frames_its_events_with_the_shared_encoder() -> None:
    from app.web import cloak

    assert not hasattr(cloak, "sse"), "one SSE encoder: app.live.sse_message"


async def test_every_stream_ends_when_the_server_stops() -> None:
    """Else uvicorn waits for them (up to an hour) and the lifespan shutdown never runs before SIGKILL."""
    hub, source = live.EventHub(), Source()
    _flag, is_disconnected = connected()
    screen = live.stream(hub, "ABCDEF", kind="screen", build=source.build, is_disconnected=is_disconnected)
    phone = live.stream(hub, "ABCDEF", kind="player", build=source.build, is_disconnected=is_disconnected)
    for body in (screen, phone):
        await next_message(body)
        await next_message(body)
    hub.close()
    for body in (screen, phone):
        with pytest.raises(StopAsyncIteration):
            await next_message(body)
    assert hub.subscribers("ABCDEF") == 0
