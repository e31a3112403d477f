"""The policy lab and pick the moments as plain HTML (issue 19): everything works without JavaScript, the round's
result comes from the server's own episode, the heuristic's moments stay off the page until the round is played."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from app import messages
from tests.helpers import csrf_from, web_join
from tests.web.events.builders import host_event_in_html, join_event_in_html, press_host_button


def episodes_of(html: str) -> dict[str, dict[str, object]]:
    match = re.search(r'<script type="application/json" id="episodes-data">(.*?)</script>', html, re.S)
    assert match, "no episodes on the page"
    return json.loads(match.group(1))


def test_the_lab_page_shows_both_episodes_the_words_and_the_plot(client: TestClient) -> None:
    page = client.get("/lab/policy", params={"attack": "fgsm", "budget": 0.2, "seed": 1001})
    assert page.status_code == 200 and "HX-Request" in page.headers["vary"]
    data = episodes_of(page.text)
    attacked = data["attacked"]
    assert data["clean"]["return"] == 500 and attacked["attack"] == "fgsm" and attacked["budget"] == 0.2
    assert f'id="attacked-steps">{attacked["return"]}<' in page.text
    assert f'id="attacked-count">{len(attacked["attacked_steps"])}<' in page.text  # type: ignore[arg-type]
    for words in ("Huang et al. 2017", "Lin et al. 2017", "Behzadan &amp; Munir 2017"):
        assert words in page.text
    assert 'id="lab-budget"' in page.text and 'type="range"' in page.text
    assert "/static/policy/policy.js" in page.text and "<script>" not in page.text, "no inline script (CSP)"
    svg = client.get("/lab/policy/plot.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/lab/policy/plot.png").content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/lab/policy/plot.gif").status_code == 404
    assert client.get("/lab/policy", params={"attack": "none"}).status_code == 422
    assert 'href="/lab/policy"' in client.get("/").text, "the lab is in the navigation"


def test_a_round_played_without_javascript(client: TestClient) -> None:
    assert "Pick a nickname first" in client.get("/lab/policy/play").text
    token = web_join(client, "formplayer")
    page = client.get("/lab/policy/play")
    assert page.status_code == 200 and 'id="policy-start"' in page.text
    assert client.post("/lab/policy/rounds", data={"budget": "0.2", "attacked_steps": "3"}).status_code == 403
    started = client.post(
        "/lab/policy/rounds", data={"budget": "0.2", "attacked_steps": "3", "csrf_token": token}, follow_redirects=False
    )
    assert started.status_code == 303
    url = started.headers["location"]
    round_page = client.get(url)
    assert round_page.status_code == 200 and 'id="picks-form"' in round_page.text
    assert set(episodes_of(round_page.text)) == {"clean"}, "the heuristic's episode is not on the page yet"
    assert 'id="continue-round"' in client.get("/lab/policy/play").text
    too_many = client.post(url + "/picks", data={"steps": "1 2 3 4", "csrf_token": csrf_from(round_page.text)})
    assert too_many.status_code == 422 and "Pick at most 3 different steps" in too_many.text
    done = client.post(url + "/picks", data={"steps": "8, 30", "csrf_token": token})
    assert done.status_code == 200 and 'id="policy-result"' in done.text
    shown = episodes_of(done.text)
    assert set(shown) == {"clean", "player", "heuristic"}
    mine, theirs = shown["player"], shown["heuristic"]
    assert (
        f'id="player-steps">{mine["return"]}<' in done.text and f'id="heuristic-steps">{theirs["return"]}<' in done.text
    )
    assert mine["attacked_steps"][0] == 8  # type: ignore[index]
    again = client.post(url + "/picks", data={"steps": "9", "csrf_token": token})
    assert again.status_code == 409 and messages.POLICY_ROUND_PLAYED in again.text
    board = client.get("/leaderboard")
    assert 'id="policy-board-table"' in board.text and "formplayer" in board.text
    stats = client.get("/lab/policy/play").text.split('id="policy-stats"')[1]
    assert "Of 1 played rounds" in stats and "/api/v1/export/policy_rounds.csv" in stats


def test_a_hosted_policy_event_sends_its_phones_to_pick_the_moments(client: TestClient) -> None:
    form = client.get("/host")
    assert 'name="mode" value="policy"' in form.text
    code = host_event_in_html(client, mode="policy")
    press_host_button(client, code, "start")
    client.cookies.clear()
    join_event_in_html(client, code, "phone")
    phone = client.get(f"/events/{code}/play")
    assert phone.status_code == 200 and 'id="policy-event-play"' in phone.text
    token = csrf_from(client.get("/lab/policy/play").text)
    started = client.post("/lab/policy/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert started.status_code == 303
    done = client.post(started.headers["location"] + "/picks", data={"steps": "2", "csrf_token": token})
    assert done.status_code == 200 and 'id="policy-result"' in done.text
    board = client.get("/leaderboard", params={"event": code})
    assert "phone" in board.text.split('id="policy-board"')[1]
