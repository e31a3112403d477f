"""Live updates for event screens and phones: an in-process publish/subscribe hub and the SSE stream loop.

How an answer reaches the big screen: the answer route commits, then calls ``hub.publish(code)``. Every stream
of that event wakes up, waits COALESCE_S so that a burst of answers becomes one update, and sends fresh
fragments. The fragments are built once per change and shared by all screens of the event (three screens cost
one set of queries), and no stream holds a database session while it waits.

Phones subscribe too, but only to *status* changes (start, pause, phase, a new together image, its countdown
ending, the end): 200 phones do not re-query the database on every answer.

Several web processes: on PostgreSQL the hub has a ``relay`` (``app/db/notify.py``, LISTEN/NOTIFY), so a publish
wakes this process's streams at once and is sent to the other processes, whose hubs wake theirs. On SQLite (one
process) there is no relay. Time-based changes (a countdown or time limit running out) need no publisher: each
snapshot says when it goes stale (``wake_at``) and the streams wake up by themselves then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

logger = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
COALESCE_S = 0.15
MAX_STREAM_S = 3600.0  # then the browser's EventSource reconnects by itself


@dataclass(frozen=True)
class Snapshot:
    """What a stream sends: named SSE events (name → data). ``key`` identifies the state (a stream sends again only
    when it changes); ``wake_at`` is when the snapshot goes stale by itself (a countdown ends)."""

    key: str
    events: tuple[tuple[str, str], ...]
    wake_at: datetime | None = None


@dataclass
class _Cached:
    version: int
    snapshot: Snapshot


@dataclass
class _Channel:
    version: int = 0  # any change (answers, joins, host actions)
    status_version: int = 0  # host actions only
    subscribers: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set on any change
    status_changed: asyncio.Event = field(default_factory=asyncio.Event)  # set on host actions only
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    cache: dict[str, _Cached] = field(default_factory=dict)


class Relay(Protocol):
    """Carries publishes between the web processes of one database (``app/db/notify.py``'s ``NotifyChannel``)."""

    def send(self, message: str) -> None: ...

    async def start(self, receive: Callable[[str], None], resync: Callable[[], None]) -> None: ...

    async def stop(self) -> None: ...


STATUS, CHANGE = "status", "change"  # what a relayed message says happened, before the event code


class EventHub:
    def __init__(self, relay: Relay | None = None) -> None:
        self._channels: dict[str, _Channel] = {}
        self.published = 0
        self.closing = False  # the server is stopping: streams end (their browsers reconnect to the next one)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.relay = relay

    async def start(self) -> None:
        if self.relay is not None:
            await self.relay.start(self.receive, self.resync)

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()

    def _channel(self, code: str) -> _Channel:
        channel = self._channels.get(code)
        if channel is None:
            channel = self._channels[code] = _Channel()
        return channel

    def subscribers(self, code: str) -> int:
        channel = self._channels.get(code)
        return channel.subscribers if channel else 0

    def publish(self, code: str, *, status: bool = False) -> None:
        """Something changed in the event (call it after the change is committed): here and, through the relay, in
        the other web processes."""
        self.published += 1
        self.wake(code, status=status)
        if self.relay is not None:
            self.relay.send(f"{STATUS if status else CHANGE} {code}")

    def receive(self, message: str) -> None:
        """A publish from another web process."""
        kind, _, code = message.partition(" ")
        self.wake(code, status=kind == STATUS)

    def resync(self) -> None:
        """Publishes from the other processes may have been missed (the relay reconnected): every stream looks."""
        for code in list(self._channels):
            self.wake(code, status=True)

    def wake(self, code: str, *, status: bool) -> None:
        channel = self._channels.get(code)
        if channel is None:  # nobody is watching
            return
        channel.version += 1
        channel.changed.set()
        channel.changed = asyncio.Event()
        if status:  # phones only wake for these: an answer does not stir 200 idle streams
            channel.status_version += 1
            channel.status_changed.set()
            channel.status_changed = asyncio.Event()

    def close(self) -> None:
        """End every stream now, so that a stopping server's open responses finish and its shutdown runs."""
        self.closing = True
        for channel in self._channels.values():
            channel.changed.set()
            channel.status_changed.set()

    def close_from_signal(self) -> None:
        """``close`` from a signal handler, which may interrupt the event loop anywhere: it runs on the loop."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.close)

    @contextlib.asynccontextmanager
    async def subscription(self, code: str) -> AsyncIterator[_Channel]:
        self._loop = asyncio.get_running_loop()
        channel = self._channel(code)
        channel.subscribers += 1
        try:
            yield channel
        finally:
            channel.subscribers -= 1
            if channel.subscribers == 0 and self._channels.get(code) is channel:
                del self._channels[code]

    async def snapshot(
        self, channel: _Channel, kind: str, version: int, build: Callable[[], Awaitable[Snapshot]]
    ) -> Snapshot:
        """The snapshot of this kind for this version, built once however many streams ask at the same time."""
        async with channel.lock:
            cached = channel.cache.get(kind)
            now = datetime.now(UTC)
            if cached is not None and cached.version == version:
                wake = cached.snapshot.wake_at
                if wake is None or now < wake:
                    return cached.snapshot
            snapshot = await build()
            channel.cache[kind] = _Cached(version, snapshot)
            return snapshot


SSE_LINE_END = re.compile(r"\r\n|\r|\n")  # the only line ends of text/event-stream; str.splitlines() knows more


def sse_message(event: str, data: str) -> str:
    """One server-sent event, the only encoder of the app's event streams. Multi-line data becomes several data:
    lines, which the client joins with \\n."""
    lines = SSE_LINE_END.split(data)
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


async def stream(
    hub: EventHub,
    code: str,
    *,
    kind: str,
    build: Callable[[], Awaitable[Snapshot]],
    is_disconnected: Callable[[], Awaitable[bool]],
    heartbeat_s: float = HEARTBEAT_S,
    coalesce_s: float = COALESCE_S,
    max_duration_s: float | None = None,
) -> AsyncIterator[str]:
    """The SSE body of a screen (kind="screen": every change) or a phone (kind="player": status changes only).

    Sends the current snapshot at once, then again whenever it changes, and a heartbeat every ``heartbeat_s``
    seconds of silence. It ends when the client disconnects (Starlette also cancels it), when the server stops
    (``hub.close``) or after ``max_duration_s`` (EventSource reconnects by itself)."""
    started = time.monotonic()
    async with hub.subscription(code) as channel:
        yield "retry: 2000\n\n"
        sent_key: str | None = None
        last_sent = time.monotonic()
        seen = -1
        wake_at: datetime | None = None
        while not hub.closing:
            version = channel.version if kind == "screen" else channel.status_version
            now = datetime.now(UTC)
            if version != seen or (wake_at is not None and now >= wake_at):
                if seen != -1 and version != seen and coalesce_s:
                    await asyncio.sleep(coalesce_s)  # a burst of answers becomes one update
                    version = channel.version if kind == "screen" else channel.status_version
                seen = version
                snapshot = await hub.snapshot(channel, kind, version, build)
                wake_at = snapshot.wake_at
                if snapshot.key != sent_key:
                    sent_key = snapshot.key
                    for name, data in snapshot.events:
                        yield sse_message(name, data)
                    last_sent = time.monotonic()
            if await is_disconnected():
                return
            if max_duration_s is not None and time.monotonic() - started > max_duration_s:
                return
            if time.monotonic() - last_sent >= heartbeat_s:
                yield sse_message("heartbeat", datetime.now(UTC).isoformat(timespec="seconds"))
                last_sent = time.monotonic()
            timeout = max(0.0, heartbeat_s - (time.monotonic() - last_sent))
            if wake_at is not None:
                timeout = min(timeout, max(0.0, (wake_at - datetime.now(UTC)).total_seconds()) + 0.05)
            waiter = channel.changed if kind == "screen" else channel.status_changed
            current = channel.version if kind == "screen" else channel.status_version
            if current != seen:
                continue
            # Closed while the snapshot was built (an await ago): its wake-up has been spent. mypy keeps the loop
            # condition's narrowing across the awaits, hence the ignore.
            if hub.closing:
                return  # type: ignore[unreachable]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout)
