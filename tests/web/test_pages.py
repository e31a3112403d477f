"""The HTML game without JavaScript (plain forms and redirects) and with htmx (fragments), on both backends."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app import messages
from tests.helpers import csrf_from, web_join

ROUND_LINK = re.compile(r"/play/rounds/([A-Za-z0-9_-]{20,})")


def test_pages_render(client: TestClient) -> None:
    for path in ("/", "/about", "/leaderboard"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "<html" in response.text and "htmx-2.0.11.min.js" in response.text
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert "adversarial example" in client.get("/about").text
    assert client.get("/play", follow_redirects=False).headers["location"] == "/"


def test_play_a_round_without_javascript(client: TestClient) -> None:
    token = web_join(client)
    play = client.get("/play")
    assert "Start a round" in play.text
    created = client.post("/play/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert created.status_code == 303
    round_url = created.headers["location"]
    question = client.get(round_url)
    assert question.status_code == 200
    round_id = ROUND_LINK.search(round_url).group(1)
    assert f"/rounds/{round_id}/adversarial.png" in question.text
    assert "original.png" not in question.text and "Machine said" not in question.text
    assert question.text.count('name="choice"') == 10
    # An unanswered round is where /play takes you back to: skipping by reloading is not possible.
    assert client.get("/play", follow_redirects=False).headers["location"].endswith(round_url)
    answered = client.post(
        f"/play/rounds/{round_id}/answer", data={"choice": "Sneaker", "csrf_token": token}, follow_redirects=False
    )
    assert answered.status_code == 303
    reveal = client.get(round_url)
    assert "Truth" in reveal.text and "Machine said" in reveal.text and "original.png" in reveal.text
    assert "perturbation.png" in reveal.text and "/255" in reveal.text
    again = client.post(f"/play/rounds/{round_id}/answer", data={"choice": "Bag", "csrf_token": token})
    assert again.status_code == 409 and messages.ROUND_ALREADY_ANSWERED in again.text


def test_htmx_requests_get_fragments(client: TestClient) -> None:
    token = web_join(client)
    hx = {"HX-Request": "true"}
    fragment = client.post("/play/rounds", data={"csrf_token": token}, headers=hx)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'id="stage"' in fragment.text
    assert "HX-Request" in fragment.headers["vary"]
    round_id = ROUND_LINK.search(fragment.text).group(1)
    reveal = client.post(f"/play/rounds/{round_id}/answer", data={"choice": "Bag", "csrf_token": token}, headers=hx)
    assert reveal.status_code == 200 and "<html" not in reveal.text
    assert "Truth" in reveal.text and 'hx-swap-oob="true"' in reveal.text


def test_forms_need_the_csrf_token(client: TestClient) -> None:
    web_join(client)
    refused = client.post("/play/rounds", data={}, follow_redirects=False)
    assert refused.status_code == 403 and messages.CSRF_FAILED in refused.text
    assert client.post("/join", data={"nickname": "x"}).status_code == 403
    assert client.post("/api/v1/rounds").status_code == 403, "cookie-authenticated API calls need X-CSRF-Token"


def test_nickname_is_escaped_everywhere(client: TestClient) -> None:
    evil = "<img src=x onerror=1>"
    token = web_join(client, evil)
    client.post("/play/rounds", data={"csrf_token": token})
    round_id = ROUND_LINK.search(client.get("/play").url.path).group(1)
    client.post(f"/play/rounds/{round_id}/answer", data={"choice": "Bag", "csrf_token": token})
    for path in ("/", "/leaderboard", f"/play/rounds/{round_id}"):
        page = client.get(path).text
        assert evil not in page, path
        assert "&lt;img src=x onerror=1&gt;" in page, path


def test_bad_join_shows_the_form_again(client: TestClient) -> None:
    token = csrf_from(client.get("/").text)
    response = client.post("/join", data={"nickname": "   ", "csrf_token": token})
    assert response.status_code == 422
    assert messages.NICKNAME_INVALID in response.text and 'id="nickname"' in response.text


def test_unknown_round_page_is_404(client: TestClient) -> None:
    web_join(client)
    response = client.get("/play/rounds/not-a-round")
    assert response.status_code == 404 and messages.ROUND_NOT_FOUND in response.text
    assert client.get("/rounds/not-a-round/adversarial.png").status_code == 404
    assert client.get("/rounds/x/secret.png").status_code == 404
