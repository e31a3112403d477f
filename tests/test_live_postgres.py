"""The live hub shared through PostgreSQL LISTEN/NOTIFY: hubs of different web processes (here two hubs in one test,
each with its own listening connection) hear each other's publishes; SQLite keeps the hub in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from app import live
from app.db.notify import NotifyChannel, libpq_url
from app.main import create_app
from tests.conftest import make_settings
from tests.test_live import Source, connected, next_message

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def shared_hub(url: str) -> live.EventHub:
    hub = live.EventHub(NotifyChannel(url))
    await hub.start()
    return hub


@pytest.fixture
async def two_hubs(postgres_url: str) -> AsyncIterator[tuple[live.EventHub, live.EventHub]]:
    """What two web processes on one database have: a hub each, each listening on its own connection."""
    first, second = await shared_hub(postgres_url), await shared_hub(postgres_url)
    yield first, second
    await first.stop()
    await second.stop()


async def until(condition: object, timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


async def test_a_screen_on_one_hub_sees_an_answer_published_on_the_other(
    two_hubs: tuple[live.EventHub, live.EventHub],
) -> None:
    phones_side, screen_side = two_hubs
    source = Source()
    _flag, is_disconnected = connected()
    body = live.stream(screen_side, "ABCDEF", kind="screen", build=source.build, is_disconnected=is_disconnected)
    await next_message(body)
    assert await next_message(body) == "event: tally\ndata: <b>0</b>\n\n"
    source.value = 1
    phones_side.publish("ABCDEF")  # an answer committed on the other process
    assert await next_message(body, timeout=5.0) == "event: tally\ndata: <b>1</b>\n\n"
    await body.aclose()


async def test_phones_on_the_other_hub_hear_status_changes_but_not_answers(
    two_hubs: tuple[live.EventHub, live.EventHub],
) -> None:
    host_side, phone_side = two_hubs
    source = Source()
    _flag, is_disconnected = connected()
    body = live.stream(phone_side, "ABCDEF", kind="player", build=source.build, is_disconnected=is_disconnected)
    await next_message(body)
    await next_message(body)
    source.value = 1
    host_side.publish("ABCDEF")  # an answer: phones stay quiet
    host_side.publish("OTHERS", status=True)  # another event's host: not this phone's business
    with pytest.raises(TimeoutError):
        await next_message(body, timeout=1.0)
    body = live.stream(phone_side, "ABCDEF", kind="player", build=source.build, is_disconnected=is_disconnected)
    await next_message(body)  # the timeout above ended the stream: a new one, as the phone's EventSource would
    await next_message(body)
    source.value = 2
    host_side.publish("ABCDEF", status=True)  # the host shows the next image
    assert await next_message(body, timeout=5.0) == "event: tally\ndata: <b>2</b>\n\n"
    await body.aclose()


async def test_a_hub_does_not_hear_its_own_publish_twice(two_hubs: tuple[live.EventHub, live.EventHub]) -> None:
    first, second = two_hubs
    async with first.subscription("ABCDEF") as mine, second.subscription("ABCDEF") as theirs:
        first.publish("ABCDEF")
        assert mine.version == 1, "the publishing process wakes its own streams at once"
        await until(lambda: theirs.version == 1)
        second.publish("ABCDEF")
        # NOTIFYs arrive in commit order: once the second's is here, the first's own echo would have been too.
        await until(lambda: mine.version >= 2)
        await asyncio.sleep(0.2)
        assert mine.version == 2 and theirs.version == 2


async def test_a_burst_of_publishes_is_sent_as_few_notifications(
    two_hubs: tuple[live.EventHub, live.EventHub],
) -> None:
    first, second = two_hubs
    async with second.subscription("ABCDEF") as theirs:
        for _ in range(50):  # a room answering at once
            first.publish("ABCDEF")
        await until(lambda: theirs.version >= 1)
        await asyncio.sleep(0.3)
        assert 1 <= theirs.version < 50


async def test_a_lost_listening_connection_comes_back_and_refreshes_the_streams(
    postgres_url: str, two_hubs: tuple[live.EventHub, live.EventHub]
) -> None:
    first, second = two_hubs
    source = Source()
    _flag, is_disconnected = connected()
    body = live.stream(second, "ABCDEF", kind="player", build=source.build, is_disconnected=is_disconnected)
    await next_message(body)
    await next_message(body)
    source.value = 7  # changed while the connection is down: its NOTIFY would be lost
    with psycopg.connect(libpq_url(postgres_url), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            (NotifyChannel.APPLICATION_NAME,),
        ).fetchone()
    assert killed is not None and killed[0] >= 4, "both hubs' listening and sending connections"
    assert await next_message(body, timeout=10.0) == "event: tally\ndata: <b>7</b>\n\n", "refreshed on reconnect"
    async with second.subscription("ABCDEF") as theirs:
        seen = theirs.version
        first.publish("ABCDEF", status=True)
        await until(lambda: theirs.version > seen, timeout=10.0)
    await body.aclose()


def test_the_app_shares_its_hub_through_postgresql_and_keeps_it_in_process_on_sqlite(
    postgres_url: str, sqlite_url: str
) -> None:
    assert isinstance(create_app(make_settings(postgres_url)).state.hub.relay, NotifyChannel)
    assert create_app(make_settings(sqlite_url)).state.hub.relay is None


def test_the_listening_connection_speaks_libpq() -> None:
    assert libpq_url("postgresql://arena:s3cret@db:5432/arena") == "postgresql://arena:s3cret@db:5432/arena"
    assert (
        libpq_url("postgresql+psycopg://arena@db/arena?sslmode=require")
        == "postgresql://arena@db/arena?sslmode=require"
    )


def test_a_pooler_in_front_of_the_database_can_be_bypassed_for_listening(postgres_url: str) -> None:
    direct = "postgresql://arena@db-primary:5432/arena"
    relay = create_app(make_settings(postgres_url, live_database_url=direct)).state.hub.relay
    assert relay.conninfo == direct
    assert create_app(make_settings(postgres_url)).state.hub.relay.conninfo == libpq_url(postgres_url)
