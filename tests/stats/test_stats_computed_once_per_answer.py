"""Issue 16, "expensive reads are free": GET /api/v1/stats and the /stats page ran the bootstrap on every request.
These tests reach that only through what every version of the server has (the HTTP routes and
app.stats.science.group_stats, where the bootstrap runs), so they say the same thing with or without
app/stats/cache.py: a repeated request with no new answer in between computes nothing, a new answer makes the next
request compute again. tests/stats/test_stats_cache.py tests the cache itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.stats import science
from tests.helpers import new_player, play


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, ...]]]:
    """The group keys of each group_stats call: one entry per table computed (with its bootstrap)."""
    calls: list[tuple[str, ...]] = []
    original = science.group_stats

    def counting(trials: Any, group_by: Any = science.DEFAULT_GROUP_BY, **kwargs: Any) -> Any:
        calls.append(tuple(group_by))
        return original(trials, group_by, **kwargs)

    monkeypatch.setattr(science, "group_stats", counting)
    yield calls


def counted_trials(client: TestClient) -> int:
    response = client.get("/api/v1/stats", params={"group_by": ""})
    assert response.status_code == 200, response.text
    return sum(group["n"] for group in response.json()["groups"])


def test_repeated_api_stats_compute_the_table_once_until_a_new_answer(
    client: TestClient, computed: list[tuple[str, ...]]
) -> None:
    player = new_player(client)
    play(client, player)  # this test's own newest answer: nothing computed before it can be reused
    assert counted_trials(client) == 1 and len(computed) == 1
    assert counted_trials(client) == 1
    assert len(computed) == 1, "the same stats, no new answer: computed again"
    play(client, player)
    assert counted_trials(client) == 2 and len(computed) == 2, "a new answer must make the stats be computed again"
    assert counted_trials(client) == 2 and len(computed) == 2


def test_repeated_stats_pages_compute_the_table_once_until_a_new_answer(
    client: TestClient, computed: list[tuple[str, ...]]
) -> None:
    player = new_player(client)
    play(client, player)
    first = client.get("/stats")
    assert first.status_code == 200
    per_page = len(computed)  # the table by group and the overall row
    assert per_page >= 1
    again = client.get("/stats")
    assert len(computed) == per_page, "the same page, no new answer: computed again"
    assert again.status_code == 200 and again.text == first.text
    play(client, player)
    assert client.get("/stats").status_code == 200
    assert len(computed) == 2 * per_page, "a new answer must make the page be computed again"
