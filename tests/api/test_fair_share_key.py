"""New rounds take the model worker's fair share of their client address (issue 16: one address that made many
players gets one share), while admission stays per player: the job names both."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import auth, join_event, new_event, new_player, start_event, web_join


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
