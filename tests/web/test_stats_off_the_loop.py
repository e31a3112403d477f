"""Every stats path computes its numbers off the event loop (issue #16: the chart's table ran on it): the page, its
chart in both formats and GET /api/v1/stats call science.group_stats, and the chart's drawing, only in a worker
thread, where no event loop runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.stats import science
from app.stats.cache import cache_for
from app.stats.plots import science as science_plots
from tests.stats.science_data import seed_science_data


def on_the_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("path", ["/stats", "/stats/chart.svg", "/stats/chart.png", "/api/v1/stats"])
def test_stats_are_computed_in_a_worker_thread(client: TestClient, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    seed_science_data(client.app.state.settings.database_url)
    cache_for(client.app.state).results.clear()  # computed now, not read from an earlier test's entry
    where: list[bool] = []
    group_stats, chart = science.group_stats, science_plots.accuracy_vs_eps_chart

    def recording_group_stats(*args: Any, **kwargs: Any) -> Any:
        where.append(on_the_event_loop())
        return group_stats(*args, **kwargs)

    def recording_chart(*args: Any, **kwargs: Any) -> Any:
        where.append(on_the_event_loop())
        return chart(*args, **kwargs)

    monkeypatch.setattr(science, "group_stats", recording_group_stats)
    monkeypatch.setattr(science_plots, "accuracy_vs_eps_chart", recording_chart)
    assert client.get(path).status_code == 200
    assert where and not any(where), f"computed on the event loop: {where}"
