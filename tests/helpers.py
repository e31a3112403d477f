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
