"""A phone in an event: joining by code and a whole own-pace session in HTML."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from app import messages
from tests.helpers import csrf_from
from tests.web.events.builders import host_event_in_html, join_event_in_html, press_host_button, swap_cookies

HTML = {"Accept": "text/html"}


def test_join_errors_are_explained(client: TestClient) -> None:
    code = host_event_in_html(client)
    page = client.get("/join")
    unknown = client.post("/join/event", data={"code": "ZZZZZZ", "nickname": "Ann", "csrf_token": csrf_from(page.text)})
    assert unknown.status_code == 404 and messages.EVENT_NOT_FOUND in html.unescape(unknown.text)
    assert client.get("/join/ZZ", headers=HTML).status_code == 404
    host_jar = swap_cookies(client, [])
    join_event_in_html(client, code, "Ann")
    swap_cookies(client, [])
    page = client.get(f"/join/{code}")
    taken = client.post("/join/event", data={"code": code, "nickname": "ANN", "csrf_token": csrf_from(page.text)})
    assert taken.status_code == 409 and messages.NICKNAME_TAKEN in html.unescape(taken.text)
    swap_cookies(client, host_jar)
    press_host_button(client, code, "end")
    swap_cookies(client, [])
    page = client.get(f"/join/{code}")
    ended = client.post("/join/event", data={"code": code, "nickname": "Cy", "csrf_token": csrf_from(page.text)})
    assert ended.status_code == 409 and messages.EVENT_ENDED in html.unescape(ended.text)


def test_a_whole_own_pace_session_in_html(client: TestClient) -> None:
    code = host_event_in_html(client)
    host_jar = swap_cookies(client, [])
    join_event_in_html(client, code, "Ada")
    lobby = client.get(f"/events/{code}/play")
    assert "Waiting for the host" in lobby.text
    assert f'sse-connect="/events/{code}/stream?role=player"' in lobby.text
    assert "htmx-ext-sse-2.2.4.min.js" in lobby.text
    assert client.get("/play", follow_redirects=False).headers["location"].endswith(f"/events/{code}/play")
    ada_jar = swap_cookies(client, host_jar)
    press_host_button(client, code, "start")
    swap_cookies(client, ada_jar)

    token = csrf_from(lobby.text)
    created = client.post(f"/events/{code}/play/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert created.status_code == 303
    question = client.get(f"/events/{code}/play")
    round_id = re.search(r'data-round-id="([^"]+)"', question.text).group(1)  # type: ignore[union-attr]
    assert "Machine said" not in question.text
    hx = {"HX-Request": "true"}
    reveal = client.post(
        f"/events/{code}/play/rounds/{round_id}/answer", data={"choice": "Coat", "csrf_token": token}, headers=hx
    )
    assert reveal.status_code == 200 and "<html" not in reveal.text
    assert "Machine said" in reveal.text and "Coat" in reveal.text and "Next round" in reveal.text
    again = client.post(f"/events/{code}/play/rounds/{round_id}/answer", data={"choice": "Bag", "csrf_token": token})
    assert messages.ROUND_ALREADY_ANSWERED in html.unescape(again.text)

    screen = client.get(f"/events/{code}/screen")
    assert screen.status_code == 200 and 'data-answers="1"' in screen.text and "Ada" in screen.text
    assert f'sse-connect="/events/{code}/stream?role=screen"' in screen.text
    for name in ("status", "tally", "eps", "board", "moments"):
        assert f'sse-swap="{name}"' in screen.text
    report = client.get(f"/events/{code}/report")
    assert report.status_code == 200 and "Ada" in report.text and "95% interval" in report.text
    assert f"/api/v1/events/{code}/answers.csv?download=1" in report.text
    board = client.get(f"/leaderboard?event={code}")
    assert "Ada" in board.text


def test_a_phone_in_an_event_sees_the_event_not_the_whole_site(client: TestClient) -> None:
    """A room on phones should not wander off to the lab: the join and play pages of an event show only the event."""
    code = host_event_in_html(client)
    site_links = ('href="/lab/transfer"', 'href="/cloak"', 'href="/host"', "answers.csv")
    assert all(link in client.get("/join").text for link in site_links)  # the site's own join page keeps them
    swap_cookies(client, [])
    joining = client.get(f"/join/{code}")
    assert not any(link in joining.text for link in site_links)
    join_event_in_html(client, code, "Ada")
    playing = client.get(f"/events/{code}/play")
    assert playing.status_code == 200 and f'href="/events/{code}/play"' in playing.text
    assert not any(link in playing.text for link in site_links)
    assert "leave" in playing.text  # the way out stays
