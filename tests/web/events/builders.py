"""Builders for the workshop pages' tests: host an event through its form, join it from a phone, press the host's
buttons, and switch who the test client is."""

from __future__ import annotations

import re
from http.cookiejar import Cookie

from fastapi.testclient import TestClient
from httpx import Response

from tests.helpers import csrf_from

CODE = re.compile(r"/events/([A-Z0-9]{6})/host")


def host_event_in_html(client: TestClient, **fields: str) -> str:
    form = client.get("/host")
    assert form.status_code == 200
    data = {
        "name": "Client workshop",
        "opponent": "fashion-cnn",
        "attack": "pgd",
        "eps_min": "4",
        "eps_max": "12",
        "style": "own_pace",
        "rounds": "5",
        "round_seconds": "20",
        "csrf_token": csrf_from(form.text),
        **fields,
    }
    created = client.post("/host", data=data, follow_redirects=False)
    assert created.status_code == 303, created.text
    match = CODE.search(created.headers["location"])
    assert match
    return match.group(1)


def swap_cookies(client: TestClient, jar: list[Cookie]) -> list[Cookie]:
    """Be someone else on the same client: the host, then a player, then the host again."""
    old = list(client.cookies.jar)
    client.cookies.clear()
    for cookie in jar:
        client.cookies.jar.set_cookie(cookie)
    return old


def enter_host_key(client: TestClient, code: str, key: str, *, base: str = "") -> Response:
    """Become the host on another device: open the console, which asks for the host key, and post it."""
    page = client.get(f"{base}/events/{code}/host", headers={"Accept": "text/html"})
    return client.post(
        f"{base}/events/{code}/host",
        data={"key": key, "csrf_token": csrf_from(page.text)},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )


def join_event_in_html(client: TestClient, code: str, nickname: str) -> None:
    page = client.get(f"/join/{code}")
    assert page.status_code == 200 and f'value="{code}"' in page.text
    joined = client.post(
        "/join/event",
        data={"code": code.lower(), "nickname": nickname, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert joined.status_code == 303 and joined.headers["location"].endswith(f"/events/{code}/play")


def press_host_button(client: TestClient, code: str, action: str) -> None:
    console = client.get(f"/events/{code}/host")
    response = client.post(
        f"/events/{code}/host/{action}", data={"csrf_token": csrf_from(console.text)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
