"""The pages of "fool it by hand": choosing a tool without JavaScript, the board the script drives (cookie plus the
page's CSRF token for the API), the leaderboard, "can you still see it?" and a workshop's big screen of best edits."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.test_paint_api import paint_the_machines_change, start
from tests.helpers import csrf_from, join_event, new_event, start_event, web_join


def test_a_painting_from_the_start_page_to_the_board(client: TestClient) -> None:
    token = web_join(client, "brushy")
    page = client.get("/paint")
    assert page.status_code == 200 and "Fool it by hand" in page.text and 'value="pencil"' in page.text
    started = client.post("/paint", data={"tool": "pencil", "csrf_token": token}, follow_redirects=False)
    assert started.status_code == 303 and re.fullmatch(r"/paint/[0-9a-f]{32}", started.headers["location"])
    board = client.get(started.headers["location"])
    assert board.status_code == 200 and 'id="paint-canvas"' in board.text and 'data-tool="pencil"' in board.text
    assert "/static/paint.js?v=" in board.text and "<kbd>W</kbd> white" in board.text
    painting_id = started.headers["location"].rsplit("/", 1)[1]
    url = f"/api/v1/paint/{painting_id}/strokes"
    body = {"tool": "pencil", "points": [[14, 14]], "value": 255}
    assert client.post(url, json=body).status_code == 403  # a cookie alone is not enough: the page's token too
    reply = client.post(url, json=body, headers={"X-CSRF-Token": csrf_from(board.text)})
    assert reply.status_code == 200 and len(reply.json()["top3"]) == 3
    assert client.post("/paint", data={"tool": "pencil"}, follow_redirects=False).status_code == 403
    nothing = client.post("/paint/see", data={"csrf_token": token}, follow_redirects=False)
    assert nothing.status_code == 404 and "No painted image" in nothing.text
    board_page = client.get("/paint/leaderboard")
    assert board_page.status_code == 200 and "brushy" in board_page.text


def test_a_workshop_paints_one_image_and_its_screen_shows_the_best_edits(client: TestClient) -> None:
    event = new_event(client)
    start_event(client, event)
    ada, bob = join_event(client, event, "Ada"), join_event(client, event, "Bob")
    first, second = start(client, ada, tool="brush"), start(client, bob, tool="brush", image_index=5)
    assert client.get(first["clean_url"]).content == client.get(second["clean_url"]).content  # the room's one image
    index = client.get("/api/v1/paint-export").json()[0]["image_index"]
    won = paint_the_machines_change(client, ada, first, index)
    assert won["status"] == "fooled"
    screen = client.get(f"/events/{event['code']}/paint-screen")
    assert screen.status_code == 200 and f'sse-connect="/events/{event["code"]}/paint-stream"' in screen.text
    assert "<strong>Ada</strong>" in screen.text and f"/api/v1/paint/{first['painting_id']}/painted.png" in screen.text
    assert "Bob" not in screen.text.split("best edits")[1]  # Bob has not fooled it
    assert re.search(r'id="paint-fooled">1</span> of 2 paintings', screen.text)
