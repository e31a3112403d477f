"""Flash mode over the API: the host sets the flash, each round carries it, answers store the measured time."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.helpers import auth, new_player, new_round, start_event


def flash_event(client: TestClient, flash_ms: object) -> dict:
    return client.post("/api/v1/events", json={"name": "Flash lab", "eps": 8 / 255, "flash_ms": flash_ms})


def test_flash_rounds_record_the_measured_time_and_flag_misses(client: TestClient) -> None:
    assert flash_event(client, 5).status_code == 422
    assert flash_event(client, "soon").status_code == 422
    event = flash_event(client, 100).json()
    start_event(client, event)
    guest = new_player(client, "eyes", event["code"])
    results = []
    for shown in (101.3, 140.0, None):
        round_ = new_round(client, guest)
        assert round_["flash_ms"] == 100
        body = {"choice": round_["choices"][0], **({"shown_ms": shown} if shown is not None else {})}
        reply = client.post(round_["answer_url"], headers=auth(guest), json=body)
        assert reply.status_code == 200, reply.text
        results.append((reply.json()["shown_ms"], reply.json()["timing_flagged"]))
    assert results == [(101.3, False), (140.0, True), (None, True)]
    rows = client.get("/api/v1/export/answers.json").json()
    assert sorted((r["flash_ms"], r["timing_flagged"]) for r in rows) == [(100, False), (100, True), (100, True)]


def test_shown_ms_is_validated_and_ignored_outside_flash_mode(client: TestClient) -> None:
    player = new_player(client, "plain")
    round_ = new_round(client, player)
    assert round_["flash_ms"] is None
    bad = client.post(round_["answer_url"], headers=auth(player), json={"choice": "Coat", "shown_ms": -3})
    assert bad.status_code == 422
    reply = client.post(round_["answer_url"], headers=auth(player), json={"choice": "Coat", "shown_ms": 50})
    assert reply.status_code == 200 and reply.json()["shown_ms"] is None and reply.json()["timing_flagged"] is None


def test_the_guess_share_of_an_event_is_validated(client: TestClient) -> None:
    for bad in (-0.1, 1.5, "often"):
        body = {"name": "Guessing", "eps": 8 / 255, "guess_share": bad}
        assert client.post("/api/v1/events", json=body).status_code == 422, bad
    body = {"name": "Guessing", "eps": 8 / 255, "guess_share": 1}
    event = client.post("/api/v1/events", json=body).json()
    start_event(client, event)
    guest = new_player(client, "reader", event["code"])
    created = new_round(client, guest)
    assert created["task"] == "guess_machine" and len(created["choices"]) == 2
