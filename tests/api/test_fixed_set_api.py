"""A fixed-set event over HTTP: image_mode in the create body and on the host form, the set made once, every player
shown each item once, and the event's stats with agreement per image (fresh events have none)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.game import events
from tests.api.test_event_stock import prepare_in_the_app
from tests.helpers import join_event, new_event, play_round, start_event
from tests.web.events.builders import host_event_in_html


def test_a_fixed_set_event_serves_the_same_items_to_everyone_and_reports_agreement(client: TestClient) -> None:
    event = new_event(client, rounds=3, expected_players=50, eps=8 / 255, image_mode="fixed")
    state = client.get(f"/api/v1/events/{event['code']}").json()
    assert (state["image_mode"], state["images_to_prepare"]) == ("fixed", 3), "the set, once, whoever comes"
    assert prepare_in_the_app(client, event["code"]) == events.StockProgress(made=3, target=3)
    start_event(client, event)
    shown: dict[str, set[str]] = {}
    for name in ("ana", "bo"):
        player = join_event(client, event, name)
        for _ in range(3):
            round_, _reply = play_round(client, player, "Bag")
            image = client.get(round_["image_url"])
            assert image.status_code == 200
            shown.setdefault(name, set()).add(image.content.hex())
    assert shown["ana"] == shown["bo"] and len(shown["ana"]) == 3, "the same three images for both"
    stats = client.get(f"/api/v1/events/{event['code']}/stats").json()
    agreement = stats["agreement"]
    assert len(agreement["items"]) == 3 and all(item["n"] == 2 for item in [i["human"] for i in agreement["items"]])
    assert agreement["pairwise_agreement"] == 1.0, "both always said Bag"
    fresh = new_event(client, rounds=2)
    assert client.get(f"/api/v1/events/{fresh['code']}/stats").json()["agreement"] is None


def test_a_fixed_set_needs_own_pace_and_rounds(client: TestClient) -> None:
    for body in ({"style": "together", "rounds": 3}, {"time_limit_s": 600}):
        response = client.post("/api/v1/events", json={"name": "W", "eps": 8 / 255, "image_mode": "fixed", **body})
        assert response.status_code == 422 and "fixed set" in response.text


def test_the_host_form_offers_a_fixed_set(client: TestClient) -> None:
    assert 'name="image_mode" value="fixed"' in client.get("/host").text
    code = host_event_in_html(client, rounds="4", image_mode="fixed")
    assert client.get(f"/api/v1/events/{code}").json()["image_mode"] == "fixed"
