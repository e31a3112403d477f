"""One PostgreSQL LISTEN/NOTIFY channel shared by every web process on a database: what the live hub uses so that a
screen on one process hears the answers sent to another.

Each process holds two connections of its own, outside the request pool (a saturated pool must not delay the
screens, and a LISTEN cannot share a connection with requests): one sits in LISTEN, one sends. Both reconnect
after a loss, with a growing pause. Messages sent while the sender is down wait and go out once it is back;
notifications that arrive while the listener is down are lost, so after every (re)connection the listener calls
``resync`` and the hub refreshes all its streams. A process ignores the echo of its own messages (its hub has
already woken its own streams): each message carries the sending process's random origin.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from app.background import stop_task

logger = logging.getLogger(__name__)


def libpq_url(database_url: str) -> str:
    """The settings' SQLAlchemy URL as libpq takes it (no ``+driver``)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class NotifyChannel:
    """``send`` a short text to every other process; ``start(receive, resync)`` calls ``receive`` with theirs."""

    APPLICATION_NAME = "arena-live"  # how an operator finds these connections in pg_stat_activity
    # A peer that vanishes without closing (a cable, a VM) would leave a LISTEN waiting for ever: TCP keepalives and
    # a send timeout turn it into an error within about 30 s, and the reconnect loop takes over.
    CONNECT_OPTIONS: dict[str, str | int] = {
        "application_name": APPLICATION_NAME,
        "connect_timeout": 10,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,
    }

    def __init__(
        self,
        database_url: str,
        channel: str = "arena_live",
        *,
        liveness_s: float = 30.0,
        first_retry_s: float = 0.5,
        longest_retry_s: float = 10.0,
    ) -> None:
        self.conninfo = libpq_url(database_url)
        self.channel = channel
        self.origin = secrets.token_hex(6)
        self.liveness_s = liveness_s  # an idle listener checks its connection this often: a silent loss shows
        self.first_retry_s, self.longest_retry_s = first_retry_s, longest_retry_s
        self.outbox: dict[str, None] = {}  # ordered and without repeats: a burst of one event's answers is one message
        self.listening, self.outbox_filled = asyncio.Event(), asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def send(self, message: str) -> None:
        """Queue ``message`` for the other processes; it leaves at once unless the sender is reconnecting."""
        self.outbox[message] = None
        self.outbox_filled.set()

    async def start(self, receive: Callable[[str], None], resync: Callable[[], None], *, wait_s: float = 10.0) -> None:
        """Connect and listen in the background; waits up to ``wait_s`` for the first LISTEN (then goes on, and
        keeps trying: the event screens fall back to their own process until it succeeds)."""
        # New events for this start: a test client may start the same app again on another event loop.
        self.listening, self.outbox_filled = asyncio.Event(), asyncio.Event()
        if self.outbox:
            self.outbox_filled.set()
        self.tasks = [
            asyncio.create_task(self.reconnecting(lambda conn: self.listen(conn, receive, resync), "listening")),
            asyncio.create_task(self.reconnecting(self.deliver, "sending")),
        ]
        try:
            await asyncio.wait_for(self.listening.wait(), wait_s)
        except TimeoutError:
            logger.warning("live updates: no LISTEN on PostgreSQL after %.0f s; still trying", wait_s)

    async def stop(self) -> None:
        for task in self.tasks:
            await stop_task(task)
        self.tasks = []
        self.listening.clear()

    async def reconnecting(self, work: Callable[[psycopg.AsyncConnection], Awaitable[None]], role: str) -> None:
        pause = self.first_retry_s
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    make_conninfo(self.conninfo, **self.CONNECT_OPTIONS), autocommit=True
                ) as conn:
                    pause = self.first_retry_s
                    await work(conn)
            except (psycopg.Error, OSError) as error:
                logger.warning("live updates: %s connection lost (%s); again in %.1f s", role, error, pause)
            except Exception:  # never let the task end: without it the screens only hear their own process
                logger.exception("live updates: %s failed; again in %.1f s", role, pause)
            finally:
                if role == "listening":
                    self.listening.clear()
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.longest_retry_s)

    async def listen(
        self, conn: psycopg.AsyncConnection, receive: Callable[[str], None], resync: Callable[[], None]
    ) -> None:
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self.listening.set()
        resync()  # whatever was sent while nobody listened here is lost: every stream looks again
        own = self.origin + " "
        while True:
            async for note in conn.notifies(timeout=self.liveness_s):
                if not note.payload.startswith(own):
                    receive(note.payload.partition(" ")[2])
            await conn.execute("SELECT 1")

    async def deliver(self, conn: psycopg.AsyncConnection) -> None:
        while True:
            await self.outbox_filled.wait()
            messages, self.outbox = self.outbox, {}  # what is queued during the round trip goes next time
            self.outbox_filled.clear()
            try:
                await conn.execute(
                    "SELECT pg_notify(%s, %s || ' ' || message) FROM unnest(%s::text[]) AS message",
                    (self.channel, self.origin, list(messages)),
                )
            except BaseException:  # not sent: they go out on the next connection
                self.outbox = {**messages, **self.outbox}
                self.outbox_filled.set()
                raise
