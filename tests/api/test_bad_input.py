"""Bad input answers a clear 4xx, never a 500 (issue 16, "500s and small leaks"), and a name-only event uses the
documented defaults."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient
from httpx import Response

from app import messages
from app.game.events.settings import DEFAULT_EPS
from tests.helpers import auth, csrf_from, new_player, new_round

HTML = {"Accept": "text/html"}


def post_json_text(client: TestClient, url: str, body: str, **headers: str) -> Response:
    return client.post(url, content=body, headers={"Content-Type": "application/json", **headers})


def test_numbers_that_are_not_finite_are_refused_with_a_422(client: TestClient) -> None:
    # Python's json writes Infinity and NaN, and reads 1e400 as infinity: what a careless client sends. The 422's
    # body echoes the input, which must still be valid JSON.
    fields = ("eps", "eps_min", "eps_max", "rounds", "time_limit_s", "round_seconds", "flash_ms", "guess_share")
    for literal in ("Infinity", "-Infinity", "NaN", "1e400"):
        for field in fields:
            response = post_json_text(client, "/api/v1/events", f'{{"name": "Workshop", "{field}": {literal}}}')
            assert response.status_code == 422, (field, literal, response.text)
            assert response.json()["detail"], response.text
    player = new_player(client)
    round_ = new_round(client, player)
    for literal in ("Infinity", "NaN", "1e400"):
        body = f'{{"choice": "Bag", "shown_ms": {literal}}}'
        response = post_json_text(client, round_["answer_url"], body, **auth(player))
        assert response.status_code == 422, (literal, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", "shown_ms"]


def test_an_event_with_only_a_name_uses_the_documented_defaults(client: TestClient) -> None:
    created = client.post("/api/v1/events", json={"name": "Workshop"})
    assert created.status_code == 201, created.text
    state = client.get(f"/api/v1/events/{created.json()['code']}").json()
    assert state["eps_levels"] == [round(DEFAULT_EPS * 255) / 255]
    assert state["style"] == "own_pace" and state["rounds"] is None and state["time_limit_s"] is None
    assert state["phases"] == [{"opponent": "fashion-cnn", "attack": "pgd"}]


def test_an_infinite_budget_in_the_host_form_is_explained_not_a_500(client: TestClient) -> None:
    form = client.get("/host")
    for low, high in (("inf", "8"), ("4", "inf"), ("nan", "nan"), ("1e400", "")):
        fields = {"name": "x", "opponent": "fashion-cnn", "attack": "pgd", "eps_min": low, "eps_max": high}
        response = client.post("/host", data={**fields, "csrf_token": csrf_from(form.text)}, headers=HTML)
        assert response.status_code == 422, (low, high, response.status_code)
        assert messages.EVENT_EPS_INVALID in html.unescape(response.text)
    # The form's time limit is in minutes, made seconds with int(): an infinite one overflowed there (a 500).
    for minutes in ("inf", "-inf", "1e400", "Infinity"):
        fields = {"name": "x", "opponent": "fashion-cnn", "attack": "pgd", "eps_min": "4", "time_minutes": minutes}
        response = client.post("/host", data={**fields, "csrf_token": csrf_from(form.text)}, headers=HTML)
        assert response.status_code == 422, (minutes, response.status_code)
        assert messages.EVENT_LIMIT_INVALID in html.unescape(response.text)


def test_a_non_ascii_csrf_token_is_refused_with_a_403(client: TestClient) -> None:
    client.get("/")  # the session now holds a CSRF token to compare with
    response = client.post("/leave", data={"csrf_token": "jeton-forgé-é"}, headers=HTML, follow_redirects=False)
    assert response.status_code == 403
    assert messages.CSRF_FAILED in html.unescape(response.text)
