"""Rate limits on what costs the server: over a limit the answer is 429 with Retry-After (JSON for the API, a page
that retries by itself for the browser); one player over their limit leaves the other players behind the same
address playing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import empty_tables, make_settings
from tests.helpers import auth, csrf_from, new_player, web_join

LIMITS = {
    "rate_limit_per_address": "6/minute",
    "rate_limit_per_player": "2/minute",
    "rate_limit_new_players": "3/minute",
    "rate_limit_strokes_per_address": "7/minute",
    "rate_limit_strokes_per_player": "4/minute",
}


@pytest.fixture
def limited(sqlite_url: str) -> Iterator[TestClient]:
    empty_tables(sqlite_url)
    with TestClient(create_app(make_settings(sqlite_url, **LIMITS)), base_url="http://testserver") as client:
        yield client
    empty_tables(sqlite_url)


def assert_limited(reply: object) -> None:
    assert reply.status_code == 429, reply.text  # type: ignore[attr-defined]
    assert int(reply.headers["Retry-After"]) >= 1  # type: ignore[attr-defined]


def test_a_player_over_their_round_limit_leaves_the_room_behind_the_same_address_playing(limited: TestClient) -> None:
    greedy, honest = new_player(limited, "greedy"), new_player(limited, "honest")
    for _ in range(2):
        assert limited.post("/api/v1/rounds", headers=auth(greedy)).status_code == 201
    over = limited.post("/api/v1/rounds", headers=auth(greedy))
    assert_limited(over)
    assert "try" in over.json()["detail"].lower()
    assert limited.post("/api/v1/rounds", headers=auth(honest)).status_code == 201


def test_new_players_are_limited_per_address(limited: TestClient) -> None:
    for index in range(3):
        new_player(limited, f"p{index}")
    assert_limited(limited.post("/api/v1/players", json={"nickname": "one-too-many"}))


def test_explanations_and_classifications_are_limited(limited: TestClient) -> None:
    player = new_player(limited, "curious")
    for _ in range(2):
        assert limited.get("/api/v1/rounds/nope/explain", headers=auth(player)).status_code == 404
    assert_limited(limited.get("/api/v1/rounds/nope/explain", headers=auth(player)))
    for path in ("/api/v1/classify", "/api/v1/cloak"):  # no player: the per-address limit, per kind
        replies = [limited.post(path, files={"file": ("x.png", b"x", "image/png")}) for _ in range(7)]
        assert [r.status_code == 429 for r in replies] == [False] * 6 + [True]
        assert_limited(replies[-1])


def test_the_browser_gets_a_page_that_retries_by_itself(limited: TestClient) -> None:
    for index in range(3):
        limited.post("/join", data={"nickname": f"w{index}"}, follow_redirects=False)
    page = limited.post(
        "/join",
        data={"nickname": "late"},
        headers={"referer": "http://testserver/", "accept": "text/html"},
        follow_redirects=False,
    )
    assert_limited(page)
    assert page.headers["content-type"].startswith("text/html")
    assert f'http-equiv="refresh" content="{page.headers["Retry-After"]};url=/"' in page.text


def test_inside_a_page_the_same_htmx_request_is_sent_again_after_the_wait(limited: TestClient) -> None:
    for index in range(3):
        limited.post("/join", data={"nickname": f"h{index}"}, follow_redirects=False)
    fragment = limited.post(
        "/join",
        data={"nickname": "late"},
        headers={"HX-Request": "true", "accept": "text/html"},
        follow_redirects=False,
    )
    assert_limited(fragment)
    wait = fragment.headers["Retry-After"]
    assert f'hx-post="/join" hx-trigger="load delay:{wait}s"' in fragment.text and "<html" not in fragment.text


def test_the_policy_labs_episodes_are_limited_apart_from_rounds(limited: TestClient) -> None:
    player = new_player(limited, "scrubber")
    query = {"attack": "timed", "budget": 0.1, "seed": 5, "attacked_steps": 1}
    for _ in range(2):
        assert limited.get("/api/v1/policy/episodes", params=query, headers=auth(player)).status_code == 200
    assert_limited(limited.get("/api/v1/policy/episodes", params=query, headers=auth(player)))
    assert limited.post("/api/v1/policy/rounds", headers=auth(player), json={}).status_code == 201, "its own kind"


def test_paint_strokes_have_their_own_limits_and_new_paintings_count_with_giving_up(limited: TestClient) -> None:
    flooder, honest = new_player(limited, "scribbler"), new_player(limited, "painter")
    painting = limited.post("/api/v1/paint", headers=auth(flooder), json={})
    assert painting.status_code == 201, painting.text
    strokes_url = painting.json()["strokes_url"]
    stroke = {"tool": "brush", "points": [[3, 4]], "amount": 10}
    for _ in range(4):  # more than the per-player limit of the other kinds: strokes are counted apart
        assert limited.post(strokes_url, headers=auth(flooder), json=stroke).status_code == 200
    over = limited.post(strokes_url, headers=auth(flooder), json=stroke)
    assert_limited(over)
    assert "try" in over.json()["detail"].lower()

    honest_painting = limited.post("/api/v1/paint", headers=auth(honest), json={}).json()
    # The address's 7 strokes a minute: the flooder's 5 requests count there, so 2 of these pass, then it holds.
    replies = [limited.post(honest_painting["strokes_url"], headers=auth(honest), json=stroke) for _ in range(3)]
    assert [reply.status_code for reply in replies] == [200, 200, 429]

    give_up = f"/api/v1/paint/{painting.json()['painting_id']}/give-up"
    assert limited.post(give_up, headers=auth(flooder)).status_code == 200
    assert_limited(limited.post("/api/v1/paint", headers=auth(flooder), json={}))


def test_new_paintings_from_the_paint_page_are_limited(limited: TestClient) -> None:
    web_join(limited, "brushy")
    token = csrf_from(limited.get("/paint").text)
    for _ in range(2):
        assert limited.post("/paint", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert_limited(limited.post("/paint", data={"csrf_token": token}, follow_redirects=False))
