"""Small builders shared by the tests."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def new_player(client: TestClient, nickname: str = "tester") -> dict[str, str]:
    response = client.post("/api/v1/players", json={"nickname": nickname})
    assert response.status_code == 201, response.text
    return response.json()


def auth(player: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {player['token']}"}


CSRF_PATTERN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def new_event(client: TestClient, **settings: object) -> dict[str, str]:
    """A workshop event made through the JSON API: its code, host token and URLs."""
    body = {"name": "Workshop", "eps_min": 4 / 255, "eps_max": 12 / 255, **settings}
    response = client.post("/api/v1/events", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def host_auth(event: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {event['host_token']}"}


def host_action(client: TestClient, event: dict[str, str], action: str, expected: int = 200) -> dict:
    response = client.post(f"/api/v1/events/{event['code']}/{action}", headers=host_auth(event))
    assert response.status_code == expected, response.text
    return response.json()


def join_event(client: TestClient, event: dict[str, str], nickname: str) -> dict[str, str]:
    response = client.post("/api/v1/players", json={"nickname": nickname, "event_code": event["code"]})
    assert response.status_code == 201, response.text
    return response.json()


def play_round(client: TestClient, player: dict[str, str], choice: str = "Bag") -> tuple[dict, dict]:
    """Ask for a round and answer it: the round as created and the answer's reply."""
    created = client.post("/api/v1/rounds", headers=auth(player))
    assert created.status_code == 201, created.text
    answered = client.post(created.json()["answer_url"], json={"choice": choice}, headers=auth(player))
    assert answered.status_code == 200, answered.text
    return created.json(), answered.json()
