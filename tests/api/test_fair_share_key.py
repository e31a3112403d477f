"""New rounds take the model worker's fair share of their client address (issue 16: one address that made many
players gets one share), while admission stays per player: the job names both."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import auth, from_address, join_event, new_event, new_player, start_event, web_join


@pytest.fixture
def asked(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The image jobs the app asks its model service for, from now on."""
    service = client.app.state.model_service  # type: ignore[attr-defined]
    jobs: list[Any] = []
    generate = service.generate

    async def recording(job: Any) -> Any:
        jobs.append(job)
        return await generate(job)

    monkeypatch.setattr(service, "generate", recording)
    return jobs


def test_rounds_of_two_players_from_one_address_share_its_key_and_keep_their_own_ids(
    client: TestClient, asked: list[Any]
) -> None:
    first, second = new_player(client, "sock-one"), new_player(client, "sock-two")
    for player in (first, second):
        assert client.post("/api/v1/rounds", headers=auth(player), json={}).status_code == 201
    assert [job.share for job in asked] == ["address:testclient"] * 2  # the TestClient's address
    assert [job.client for job in asked] == [first["player_id"], second["player_id"]]


def test_a_round_from_the_play_page_takes_its_addresss_share(client: TestClient, asked: list[Any]) -> None:
    token = web_join(client, "paged")
    reply = client.post("/play/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert reply.status_code in (200, 303), reply.text
    assert [job.share for job in asked] == ["address:testclient"]


def test_an_event_players_new_image_takes_its_addresss_share(client: TestClient, asked: list[Any]) -> None:
    event = new_event(client)
    start_event(client, event)
    player = join_event(client, event, "in-the-room")
    assert client.post("/api/v1/rounds", headers=auth(player), json={}).status_code == 201
    assert [(job.client, job.share) for job in asked] == [(player["player_id"], "address:testclient")]


# -- every other kind of job that reaches the model service from a request (issue 16) ----------------------------

ELSEWHERE = "192.0.2.7"  # a second client address (TEST-NET-1)


def recording(client: TestClient, monkeypatch: pytest.MonkeyPatch, operation: str) -> list[Any]:
    """The jobs the app hands to its model service's ``operation`` from now on (they still run)."""
    service = client.app.state.model_service  # type: ignore[attr-defined]
    jobs: list[Any] = []
    inner = getattr(service, operation)

    async def recorded(job: Any) -> Any:
        jobs.append(job)
        return await inner(job)

    monkeypatch.setattr(service, operation, recorded)
    return jobs


def test_text_rounds_of_many_players_take_their_addresss_one_share(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = recording(client, monkeypatch, "text")
    readers = [new_player(client, f"reader-{k}") for k in range(3)]
    for reader in readers:
        assert client.post("/api/v1/text/rounds", headers=auth(reader), json={}).status_code == 201
    elsewhere = from_address(client, ELSEWHERE)
    stranger = new_player(elsewhere, "stranger")
    assert elsewhere.post("/api/v1/text/rounds", headers=auth(stranger), json={}).status_code == 201
    assert [job.share for job in asked] == ["address:testclient"] * 3 + [f"address:{ELSEWHERE}"]
    assert [job.client for job in asked] == [p["player_id"] for p in (*readers, stranger)]


def test_a_text_round_from_the_text_page_takes_its_addresss_share(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = recording(client, monkeypatch, "text")
    token = web_join(client, "paged-reader")
    reply = client.post("/play/text/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert reply.status_code in (200, 303), reply.text
    assert [job.share for job in asked] == ["address:testclient"]


def test_a_text_events_rounds_take_their_addresss_share(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = recording(client, monkeypatch, "text")
    event = new_event(client, phases=[{"opponent": "definitions-tfidf", "attack": "textfooler"}], rounds=2)
    start_event(client, event)
    player = join_event(client, event, "room-reader")
    assert client.post("/api/v1/text/rounds", headers=auth(player), json={}).status_code == 201
    assert [(job.client, job.share) for job in asked] == [(player["player_id"], "address:testclient")]


def test_policy_episodes_of_many_players_take_their_addresss_one_share(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = recording(client, monkeypatch, "run_episode")
    pickers = [new_player(client, f"picker-{k}") for k in range(2)]
    body = {"budget": 0.2, "attacked_steps": 3}
    for picker in pickers:
        assert client.post("/api/v1/policy/rounds", headers=auth(picker), json=body).status_code == 201
    elsewhere = from_address(client, ELSEWHERE)
    stranger = new_player(elsewhere, "stranger")
    assert elsewhere.post("/api/v1/policy/rounds", headers=auth(stranger), json=body).status_code == 201
    query = {"attack": "timed", "budget": 0.2, "seed": 1000, "attacked_steps": 3}
    assert client.get("/api/v1/policy/episodes", params=query).status_code == 200
    assert elsewhere.get("/api/v1/policy/episodes", params=query).status_code == 200
    here, there = "address:testclient", f"address:{ELSEWHERE}"
    expected = {picker["player_id"]: here for picker in pickers}
    expected.update({stranger["player_id"]: there, "lab:testclient": here, f"lab:{ELSEWHERE}": there})
    assert {job.client for job in asked} == set(expected), "a round's clean and heuristic episodes; the lab's two"
    assert [job.share for job in asked] == [expected[job.client] for job in asked]


def test_the_policy_lab_page_and_a_round_page_take_their_addresss_share(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = recording(client, monkeypatch, "run_episode")
    token = web_join(client, "paged-picker")
    assert client.get("/lab/policy", params={"attacked_steps": 3}).status_code == 200
    reply = client.post("/lab/policy/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert reply.status_code == 303, reply.text
    assert client.get(reply.headers["location"]).status_code == 200
    assert asked and {job.share for job in asked} == {"address:testclient"}


def test_paint_jobs_of_many_painters_take_their_addresss_one_share(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = recording(client, monkeypatch, "generate")
    answers = recording(client, monkeypatch, "classify")
    painters = [new_player(client, f"painter-{k}") for k in range(2)]
    elsewhere = from_address(client, ELSEWHERE)
    stranger = new_player(elsewhere, "stranger")
    stroke = {"tool": "brush", "points": [[3, 4]], "amount": 5}
    for http, painter in ((client, painters[0]), (client, painters[1]), (elsewhere, stranger)):
        started = http.post("/api/v1/paint", headers=auth(painter), json={"tool": "brush", "budget": 10})
        assert started.status_code == 201, started.text
        assert http.post(started.json()["strokes_url"], headers=auth(painter), json=stroke).status_code == 200
    here, there = "address:testclient", f"address:{ELSEWHERE}"
    assert [job.share for job in answers] == [here, here, there]
    assert [job.client for job in answers] == [p["player_id"] for p in (*painters, stranger)]
    assert images and {job.share for job in images if job.client != stranger["player_id"]} == {here}
    assert {job.share for job in images if job.client == stranger["player_id"]} <= {there}


def test_explanations_of_many_players_take_their_addresss_one_share(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = recording(client, monkeypatch, "explain")
    elsewhere = from_address(client, ELSEWHERE)
    players = [(client, new_player(client, "curious-1")), (client, new_player(client, "curious-2"))]
    players.append((elsewhere, new_player(elsewhere, "stranger")))
    for http, player in players:
        round_ = http.post("/api/v1/rounds", headers=auth(player), json={}).json()
        assert http.post(round_["answer_url"], headers=auth(player), json={"choice": "Bag"}).status_code == 200
        explained = http.get(f"/api/v1/rounds/{round_['round_id']}/explain", headers=auth(player))
        assert explained.status_code == 200, explained.text
    assert [job.share for job in asked] == ["address:testclient"] * 2 + [f"address:{ELSEWHERE}"]
    assert [job.client for job in asked] == [player["player_id"] for _, player in players]
