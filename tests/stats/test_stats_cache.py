"""Cheap stats: the page, its chart and GET /api/v1/stats are computed once per (filters, newest counted answer)
(app/stats/cache.py). A hit does not recompute, a new answer invalidates, the key is read from the database so a
second web process over the same database sees the new answer too, and the cache stays within its size."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, update

from app.db.session import sync_url
from app.db.tables import SharedRoundRecord
from app.main import create_app
from app.stats import science
from app.stats.cache import StatsCache, cache_for
from tests.conftest import make_settings
from tests.helpers import new_player, play
from tests.stats.science_data import seed_science_data


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, ...]]]:
    """The group_stats calls made (their group keys): one per table actually computed."""
    calls: list[tuple[str, ...]] = []
    original = science.group_stats

    def counting(trials: Any, group_by: Any = science.DEFAULT_GROUP_BY, **kwargs: Any) -> Any:
        calls.append(tuple(group_by))
        return original(trials, group_by, **kwargs)

    monkeypatch.setattr(science, "group_stats", counting)
    yield calls


def api_stats(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/api/v1/stats", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_hit_does_not_recompute_and_a_new_answer_invalidates(
    client: TestClient, computed: list[tuple[str, ...]]
) -> None:
    counts = seed_science_data(client.app.state.settings.database_url)
    cache_for(client.app.state).results.clear()
    first = api_stats(client, group_by="")
    assert first["groups"][0]["n"] == counts["counted"] and len(computed) == 1
    assert api_stats(client, group_by="") == first and len(computed) == 1  # served from the cache
    api_stats(client, group_by="attack")  # other filters or grouping: another entry
    assert len(computed) == 2
    play(client, new_player(client))  # a new answer changes the key
    after = api_stats(client, group_by="")
    assert len(computed) == 3 and after["groups"][0]["n"] == counts["counted"] + 1


def test_a_together_image_that_reveals_invalidates_without_a_new_answer(
    client: TestClient, computed: list[tuple[str, ...]]
) -> None:
    url = client.app.state.settings.database_url
    counts = seed_science_data(url)
    cache_for(client.app.state).results.clear()
    assert api_stats(client, group_by="")["groups"][0]["n"] == counts["counted"] and len(computed) == 1
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:  # the image still counting down reveals: its four answers count now
        conn.execute(
            update(SharedRoundRecord)
            .where(SharedRoundRecord.closes_at > datetime.now(UTC))
            .values(closes_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    engine.dispose()
    assert api_stats(client, group_by="")["groups"][0]["n"] == counts["counted"] + 4 and len(computed) == 2


def test_the_page_and_the_chart_are_cached_until_a_new_answer(
    client: TestClient, computed: list[tuple[str, ...]]
) -> None:
    seed_science_data(client.app.state.settings.database_url)
    cache_for(client.app.state).results.clear()
    page = client.get("/stats", params={"attack": "pgd"})
    assert page.status_code == 200 and len(computed) == 2  # the table and the overall row
    assert client.get("/stats", params={"attack": "pgd"}).text == page.text and len(computed) == 2
    chart = client.get("/stats/chart.svg")
    assert chart.status_code == 200 and len(computed) == 3
    assert client.get("/stats/chart.svg").content == chart.content and len(computed) == 3
    play(client, new_player(client))
    client.get("/stats", params={"attack": "pgd"})
    client.get("/stats/chart.svg")
    assert len(computed) == 6


def test_a_second_web_process_sees_the_new_answer(client: TestClient, computed: list[tuple[str, ...]]) -> None:
    url = client.app.state.settings.database_url
    counts = seed_science_data(url)
    with TestClient(create_app(make_settings(url)), base_url="http://testserver") as other:
        before = api_stats(other, group_by="")["groups"][0]["n"]
        assert before == counts["counted"] and api_stats(other, group_by="")["groups"][0]["n"] == before
        calls = len(computed)
        play(client, new_player(client))  # answered through the first process
        assert api_stats(other, group_by="")["groups"][0]["n"] == before + 1
        assert len(computed) == calls + 1


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = StatsCache(entries=2)

    async def scenario() -> list[str]:
        made: list[str] = []

        def maker(key: str) -> Any:
            async def make() -> str:
                made.append(key)
                return key.upper()

            return make

        assert await cache.get_or_compute("a", maker("a")) == "A"
        await cache.get_or_compute("b", maker("b"))
        await cache.get_or_compute("a", maker("a"))  # a is now the most recent
        await cache.get_or_compute("c", maker("c"))  # b goes
        await cache.get_or_compute("a", maker("a"))
        await cache.get_or_compute("b", maker("b"))
        return made

    assert asyncio.run(scenario()) == ["a", "b", "c", "b"]
    assert len(cache) == 2 and cache.hits == 2 and cache.misses == 4


def test_concurrent_requests_for_one_key_compute_it_once_and_failures_are_not_kept() -> None:
    cache = StatsCache()
    runs = []

    async def slow() -> int:
        runs.append(1)
        await asyncio.sleep(0.01)
        return 42

    async def failing() -> int:
        raise RuntimeError("database went away")

    async def scenario() -> list[int]:
        results = await asyncio.gather(*(cache.get_or_compute("k", slow) for _ in range(10)))
        with pytest.raises(RuntimeError):
            await cache.get_or_compute("bad", failing)
        assert await cache.get_or_compute("bad", slow) == 42  # tried again, not a stored failure
        return list(results)

    assert asyncio.run(scenario()) == [42] * 10
    assert len(runs) == 2 and not cache.computing
