"""Small builders shared by the tests: players, rounds and answers through the JSON API, joining on the web."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

ADMIN_TOKEN = "test-admin-token"  # tests/conftest.py's settings carry it
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}  # /healthz's details


def new_player(client: TestClient, nickname: str = "tester", event_code: str | None = None) -> dict[str, str]:
    """A player on their own or, with ``event_code``, in that event: its id, nickname and bearer token."""
    body = {"nickname": nickname} if event_code is None else {"nickname": nickname, "event_code": event_code}
    response = client.post("/api/v1/players", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def auth(player: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {player['token']}"}


def new_event(client: TestClient, **settings: object) -> dict[str, str]:
    """A workshop event with a small budget range unless ``settings`` say otherwise: code, host token, urls."""
    body = {"name": "Workshop", "eps_min": 4 / 255, "eps_max": 12 / 255, **settings}
    response = client.post("/api/v1/events", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def new_round(client: TestClient, player: dict[str, str], **choice: str) -> dict[str, Any]:
    """A round through the API: the defaults, or the opponent, attack or task in ``choice``."""
    response = client.post("/api/v1/rounds", headers=auth(player), json=choice or None)
    assert response.status_code == 201, response.text
    return response.json()


def answer(client: TestClient, player: dict[str, str], round_: dict[str, Any], choice: str) -> dict[str, Any]:
    response = client.post(round_["answer_url"], headers=auth(player), json={"choice": choice})
    assert response.status_code == 200, response.text
    return response.json()


def play(
    client: TestClient, player: dict[str, str], answer_with: str | None = None, **choice: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One round and its answer (the first label offered unless ``answer_with``): the round and the reveal."""
    round_ = new_round(client, player, **choice)
    return round_, answer(client, player, round_, answer_with or round_["choices"][0])


CSRF_PATTERN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def web_join(client: TestClient, nickname: str = "webby") -> str:
    """Join from the home page's form, as a browser without JavaScript does; the page's CSRF token."""
    home = client.get("/")
    assert home.status_code == 200
    token = csrf_from(home.text)
    response = client.post("/join", data={"nickname": nickname, "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].endswith("/play")
    return token


def host_auth(event: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {event['host_token']}"}


def host_action(client: TestClient, event: dict[str, str], action: str, expected: int = 200) -> dict:
    response = client.post(f"/api/v1/events/{event['code']}/{action}", headers=host_auth(event))
    assert response.status_code == expected, response.text
    return response.json()


def start_event(client: TestClient, event: dict[str, str]) -> None:
    """The host starts the event (rounds can be played from now on)."""
    host_action(client, event, "start")


def join_event(client: TestClient, event: dict[str, str], nickname: str) -> dict[str, str]:
    return new_player(client, nickname, event_code=event["code"])


def play_round(client: TestClient, player: dict[str, str], choice: str = "Bag") -> tuple[dict, dict]:
    """Ask for a round and answer it with ``choice``: the round as created and the answer's reply."""
    round_ = new_round(client, player)
    return round_, answer(client, player, round_, choice)


def from_address(client: TestClient, host: str) -> TestClient:
    """Another test client of ``client``'s running app (its event loop, model service and database) whose requests
    come from the address ``host``, with cookies of its own: a second machine in the room."""
    other = TestClient(client.app, base_url=str(client.base_url), client=(host, 50000))
    other.portal = client.portal
    return other
