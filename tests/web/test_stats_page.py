"""The /stats page and its charts, on SQLite and PostgreSQL, with plain GET forms (no JavaScript needed)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app import messages
from tests.stats.science_data import EVENT_CODE, seed_science_data


def test_the_page_shows_the_table_kappa_and_confusions(client: TestClient) -> None:
    counts = seed_science_data(client.app.state.settings.database_url)
    page = client.get("/stats")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/stats">Stats</a>' in html  # in the site navigation
    assert f"All {counts['counted']} trials" in html
    assert '<form class="stats-filters" method="get" action="/stats">' in html
    rows = re.findall(r"<tr><td>(adversarial|clean)</td><td>([^<]+)</td><td>([^<]+)</td>", html)
    assert ("adversarial", "linf:4/255", "pgd") in rows and ("clean", "linf:0/255", "pgd") in rows
    assert len(rows) == len(client.get("/api/v1/stats").json()["groups"])
    assert 'src="/stats/chart.svg"' in html and "Kappa people–model" in html
    assert "Confusion matrices" in html and "Ankle boot" in html
    # The filter options come from the data, but join codes are never listed (a code lets anyone join the event).
    assert '<option value="fgsm">fgsm</option>' in html and EVENT_CODE not in html


def test_filters_narrow_the_page_and_carry_into_the_chart_links(client: TestClient) -> None:
    seed_science_data(client.app.state.settings.database_url)
    html = client.get("/stats", params={"attack": "fgsm", "event": "", "since": ""}).text
    assert "All 12 trials" in html
    assert 'src="/stats/chart.svg?attack=fgsm"' in html and 'href="/stats/chart.png?attack=fgsm"' in html
    assert '<option value="fgsm" selected>' in html
    event = client.get("/stats", params={"event": EVENT_CODE.lower()}).text
    assert "All 12 trials" in event and "mean over 6 pairs, 3 images" in event


def test_bad_filters_are_explained_on_the_page(client: TestClient) -> None:
    reversed_days = client.get("/stats", params={"since": "2026-11-21", "until": "2026-11-20"})
    assert reversed_days.status_code == 422 and messages.STATS_DATES_INVALID.replace("'", "&#39;") in reversed_days.text
    bad_day = client.get("/stats", params={"since": "tomorrow"})
    assert bad_day.status_code == 422 and "YYYY-MM-DD" in bad_day.text
    unknown = client.get("/stats", params={"event": "NOPE22"})
    assert unknown.status_code == 404 and "<form" in unknown.text


def test_the_chart_as_png_and_svg(client: TestClient) -> None:
    seed_science_data(client.app.state.settings.database_url)
    png = client.get("/stats/chart.png", params={"attack": "pgd"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    svg = client.get("/stats/chart.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content and b"L2 budget" in svg.content and b"grey levels" in svg.content
    assert client.get("/stats/chart.gif").status_code == 404
    # Nothing to draw is still a chart, not an error.
    assert client.get("/stats/chart.svg", params={"opponent": "nobody"}).status_code == 200
