"""An event's prepared rounds over HTTP: expected players in the create body, the preparation's progress in the
event's state and on the host console, and rounds then served from the stock."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db.tables import StockImageRecord
from app.game import events
from tests.helpers import join_event, new_event, play_round, start_event
from tests.web.events.builders import host_event_in_html


def prepare_in_the_app(client: TestClient, code: str) -> events.StockProgress:
    async def run() -> events.StockProgress:
        state = client.app.state  # type: ignore[attr-defined]
        return await events.prepare_event(state.database, state.model_service, code)

    assert client.portal is not None
    return client.portal.call(run)


def claimed_images(client: TestClient) -> int:
    async def run() -> int:
        async with client.app.state.database.sessionmaker() as session:  # type: ignore[attr-defined]
            return int(await session.scalar(select(func.count()).where(StockImageRecord.claimed_at.is_not(None))) or 0)

    assert client.portal is not None
    return client.portal.call(run)


def test_an_event_prepares_rounds_times_expected_players_and_serves_them(client: TestClient) -> None:
    event = new_event(client, rounds=2, expected_players=2, eps=8 / 255)
    state = client.get(f"/api/v1/events/{event['code']}").json()
    assert (state["prepared_images"], state["images_to_prepare"]) == (0, 4)
    assert prepare_in_the_app(client, event["code"]) == events.StockProgress(made=4, target=4)
    state = client.get(f"/api/v1/events/{event['code']}").json()
    assert (state["prepared_images"], state["images_to_prepare"]) == (4, 4)
    start_event(client, event)
    player = join_event(client, event, "ana")
    for played in range(1, 3):
        play_round(client, player)
        assert claimed_images(client) == played, "the round came from the stock"
    plain = new_event(client, rounds=2)
    assert client.get(f"/api/v1/events/{plain['code']}").json()["images_to_prepare"] == 0, "default: on demand"


def test_expected_players_is_refused_when_out_of_range(client: TestClient) -> None:
    response = client.post("/api/v1/events", json={"name": "W", "eps": 8 / 255, "rounds": 2, "expected_players": 5000})
    assert response.status_code == 422 and "Expected players" in response.text


def test_the_host_console_shows_the_preparation_live(client: TestClient) -> None:
    code = host_event_in_html(client, rounds="3", expected_players="2")
    console = client.get(f"/events/{code}/host").text
    assert "Preparing 0 of 6 images" in console and 'hx-trigger="every 2s" hx-select="#stock"' in console
    prepare_in_the_app(client, code)
    console = client.get(f"/events/{code}/host").text
    assert "Prepared all 6 images." in console and 'hx-select="#stock"' not in console
    unprepared = host_event_in_html(client)
    assert 'id="stock"' not in client.get(f"/events/{unprepared}/host").text
