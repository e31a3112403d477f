"""Workshop events through the JSON API (issue 6), on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app import messages
from app.db.session import sync_url
from app.game.events import CODE_ALPHABET
from tests.helpers import auth, host_action, host_auth, join_event, new_event, new_player, play_round

HOST_ACTIONS = ["start", "resume", "pause", "lock", "unlock", "next-phase", "next-image", "end"]


def run_sql(client: TestClient, statement: str, **params: object) -> None:
    engine = create_engine(sync_url(client.app.state.settings.database_url))
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def test_create_event_returns_code_token_and_urls(client: TestClient) -> None:
    event = new_event(client)
    assert set(event) == {"code", "host_token", "join_url", "screen_url", "host_url", "report_url"}
    assert len(event["code"]) == 6 and set(event["code"]) <= set(CODE_ALPHABET)
    assert not set(event["code"]) & set("0O1IL")
    assert len(event["host_token"]) >= 40
    assert event["join_url"].endswith(f"/join/{event['code']}")
    assert event["screen_url"].endswith(f"/events/{event['code']}/screen")
    state = client.get(f"/api/v1/events/{event['code'].lower()}").json()  # codes are case-insensitive
    assert state["status"] == "lobby" and state["players"] == 0 and state["style"] == "own_pace"
    assert [round(e * 255) for e in state["eps_levels"]] == [4, 6, 8, 10, 12]
    assert "host_token" not in state


def test_event_settings_are_validated(client: TestClient) -> None:
    cases = [
        ({"name": ""}, messages.EVENT_NAME_INVALID),
        ({"phases": [{"opponent": "no-such-net", "attack": "pgd"}]}, None),
        ({"phases": [{"opponent": "fashion-cnn", "attack": "nope"}]}, None),
        ({"phases": []}, messages.EVENT_PHASES_INVALID),
        ({"eps_min": 0.2, "eps_max": 0.1}, messages.EVENT_EPS_INVALID),
        ({"eps": 0.9}, messages.EVENT_EPS_INVALID),
        ({"rounds": 5, "time_limit_s": 600}, messages.EVENT_LIMIT_INVALID),
        ({"rounds": 0}, messages.EVENT_LIMIT_INVALID),
        ({"style": "chaos"}, messages.EVENT_STYLE_INVALID),
        ({"round_seconds": 1}, messages.EVENT_ROUND_SECONDS_INVALID),
        ({"pack": "mnist"}, None),
    ]
    for override, message in cases:
        budget = {} if any(key.startswith("eps") for key in override) else {"eps": 8 / 255}
        body = {"name": "W", **budget, **override}
        response = client.post("/api/v1/events", json=body)
        assert response.status_code == 422, (override, response.text)
        if message is not None:
            assert response.json()["detail"] == message
    for attack in ("hopskipjump", "square", "pgd-l2"):  # every norm and threat model plays in events too
        body = {"name": "W", "eps": 8 / 255, "phases": [{"opponent": "fashion-cnn", "attack": attack}]}
        assert client.post("/api/v1/events", json=body).status_code == 201, attack
    unknown = client.post("/api/v1/events", json={"name": "W", "opponent": "no-such-net"}).json()["detail"]
    assert "no-such-net" in unknown and "fashion-cnn" in unknown, "the message lists what can be chosen"
    assert client.post("/api/v1/events", json={"name": "W", "admin": True}).status_code == 422
    offered = client.post("/api/v1/events", json={"name": "W", "attack": "nope"}).json()["detail"]
    assert "mi-fgsm" in offered and "pgd-l2" in offered and "hopskipjump" in offered


@pytest.mark.parametrize("action", HOST_ACTIONS)
def test_every_host_action_needs_the_host_token(client: TestClient, action: str) -> None:
    event = new_event(client)
    other = new_event(client)
    url = f"/api/v1/events/{event['code']}/{action}"
    missing = client.post(url)
    assert missing.status_code == 403 and missing.json()["detail"] == messages.HOST_TOKEN_REQUIRED
    for headers in (host_auth(other), {"Authorization": "Bearer guess"}, {"Authorization": "Basic abc"}):
        wrong = client.post(url, headers=headers)
        assert wrong.status_code == 403, headers
        assert wrong.json()["detail"] in (messages.HOST_TOKEN_INVALID, messages.HOST_TOKEN_REQUIRED)
    player = join_event(client, event, "Mallory")
    assert client.post(url, headers=auth(player)).status_code == 403, "a player token is not a host token"
    assert client.get(f"/api/v1/events/{event['code']}").json()["status"] == "lobby", "nothing changed"


def test_player_listing_and_removal_need_the_host_token(client: TestClient) -> None:
    event = new_event(client)
    player = join_event(client, event, "Eve")
    base = f"/api/v1/events/{event['code']}/players"
    assert client.get(base).status_code == 403
    assert client.delete(f"{base}/{player['player_id']}").status_code == 403
    assert client.delete(f"{base}/{player['player_id']}", headers=host_auth(new_event(client))).status_code == 403
    listed = client.get(base, headers=host_auth(event)).json()
    assert [p["nickname"] for p in listed] == ["Eve"]
    assert client.delete(f"{base}/nobody", headers=host_auth(event)).status_code == 404


def test_join_codes_wrong_locked_and_ended(client: TestClient) -> None:
    event = new_event(client)
    for bad in ["ZZZZZZ", "abc", "", "O0O0O0", "ABCDEFG"]:
        response = client.post("/api/v1/players", json={"nickname": "Ann", "event_code": bad})
        assert response.status_code == 404, bad
        assert response.json()["detail"] == messages.EVENT_NOT_FOUND
    assert client.get("/api/v1/events/ZZZZZZ").status_code == 404
    joined = client.post("/api/v1/players", json={"nickname": "Ann", "event_code": f" {event['code'].lower()} "})
    assert joined.status_code == 201 and joined.json()["event_code"] == event["code"]
    host_action(client, event, "lock")
    locked = client.post("/api/v1/players", json={"nickname": "Bob", "event_code": event["code"]})
    assert locked.status_code == 409 and locked.json()["detail"] == messages.EVENT_LOCKED
    host_action(client, event, "unlock")
    join_event(client, event, "Bob")
    host_action(client, event, "end")
    ended = client.post("/api/v1/players", json={"nickname": "Cy", "event_code": event["code"]})
    assert ended.status_code == 409 and ended.json()["detail"] == messages.EVENT_ENDED


def test_nicknames_are_unique_within_an_event_only(client: TestClient) -> None:
    event, other = new_event(client), new_event(client)
    join_event(client, event, "Ada")
    for twin in ("Ada", "ada", " ADA "):
        response = client.post("/api/v1/players", json={"nickname": twin, "event_code": event["code"]})
        assert response.status_code == 409 and response.json()["detail"] == messages.NICKNAME_TAKEN
    join_event(client, other, "Ada")
    new_player(client, "Ada")
    new_player(client, "Ada")  # outside events duplicates stay allowed, as before


def test_own_pace_event_rounds_follow_the_event(client: TestClient) -> None:
    event = new_event(client, rounds=2)
    player = join_event(client, event, "Ada")
    early = client.post("/api/v1/rounds", headers=auth(player))
    assert early.status_code == 409 and early.json()["detail"] == messages.EVENT_NOT_STARTED
    host_action(client, event, "start")
    assert host_action(client, event, "start", 409)["detail"] == messages.EVENT_ALREADY_STARTED
    first = client.post("/api/v1/rounds", headers=auth(player)).json()
    again = client.post("/api/v1/rounds", headers=auth(player)).json()
    assert again["round_id"] == first["round_id"], "an unanswered event round is handed out again, not replaced"
    assert round(first["eps"] * 255) in (4, 6, 8, 10, 12)
    client.post(first["answer_url"], json={"choice": "Bag"}, headers=auth(player))
    host_action(client, event, "pause")
    paused = client.post("/api/v1/rounds", headers=auth(player))
    assert paused.status_code == 409 and paused.json()["detail"] == messages.EVENT_PAUSED
    host_action(client, event, "resume")
    play_round(client, player)
    done = client.post("/api/v1/rounds", headers=auth(player))
    assert done.status_code == 409 and done.json()["detail"] == messages.EVENT_ROUNDS_DONE


def test_an_ended_event_accepts_no_answers(client: TestClient) -> None:
    event = new_event(client)
    player = join_event(client, event, "Ada")
    host_action(client, event, "start")
    created = client.post("/api/v1/rounds", headers=auth(player)).json()
    state = host_action(client, event, "end")
    assert state["status"] == "ended"
    refused = client.post(created["answer_url"], json={"choice": "Bag"}, headers=auth(player))
    assert refused.status_code == 409 and refused.json()["detail"] == messages.EVENT_ENDED
    assert client.post("/api/v1/rounds", headers=auth(player)).json()["detail"] == messages.EVENT_ENDED
    for action in ("start", "pause", "lock", "next-image"):
        assert host_action(client, event, action, 409)["detail"] == messages.EVENT_ENDED
    assert host_action(client, event, "end")["status"] == "ended", "ending twice is harmless"
    assert client.get(f"/api/v1/events/{event['code']}/stats").json()["answers"] == 0


def test_time_limit_ends_the_event_by_itself(client: TestClient) -> None:
    event = new_event(client, time_limit_s=600)
    player = join_event(client, event, "Ada")
    state = host_action(client, event, "start")
    assert 590 < state["seconds_left"] <= 600
    created = client.post("/api/v1/rounds", headers=auth(player)).json()
    past = datetime.now(UTC) - timedelta(seconds=1)
    run_sql(client, "UPDATE events SET ends_at = :t WHERE code = :c", t=past, c=event["code"])
    assert client.get(f"/api/v1/events/{event['code']}").json()["status"] == "ended"
    refused = client.post(created["answer_url"], json={"choice": "Bag"}, headers=auth(player))
    assert refused.status_code == 409 and refused.json()["detail"] == messages.EVENT_ENDED


def test_phases_switch_the_opponent_setting(client: TestClient) -> None:
    phases = [{"opponent": "fashion-cnn", "attack": "pgd"}, {"opponent": "fashion-cnn", "attack": "fgsm"}]
    event = new_event(client, phases=phases, eps=8 / 255)
    player = join_event(client, event, "Ada")
    host_action(client, event, "start")
    play_round(client, player)
    assert host_action(client, event, "next-phase")["phase"] == 1
    assert host_action(client, event, "next-phase", 409)["detail"] == messages.EVENT_LAST_PHASE
    play_round(client, player)
    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/v1/events/{event['code']}/answers.csv").text)))
    assert [(r["attack"], r["phase"]) for r in rows] == [("pgd", "0"), ("fgsm", "1")]
    assert {r["eps"] for r in rows} == {str(round(8 / 255, 6))}


def test_together_rounds_attack_once_and_share_the_image(client: TestClient) -> None:
    event = new_event(client, style="together", rounds=2, round_seconds=60)
    ada, bob = join_event(client, event, "Ada"), join_event(client, event, "Bob")
    host_action(client, event, "start")
    wait = client.post("/api/v1/rounds", headers=auth(ada))
    assert wait.status_code == 409 and wait.json()["detail"] == messages.EVENT_WAIT_NEXT_IMAGE
    service = client.app.state.model_service
    jobs_before = service.jobs_run
    state = host_action(client, event, "next-image")
    assert state["shared_round"]["number"] == 1 and state["shared_round"]["open"] is True
    assert host_action(client, event, "next-image", 409)["detail"] == messages.EVENT_SHARED_OPEN
    rounds = [client.post("/api/v1/rounds", headers=auth(p)).json() for p in (ada, bob)]
    assert service.jobs_run == jobs_before + 1, "one attack for the whole room"
    assert rounds[0]["round_id"] != rounds[1]["round_id"]
    images = [client.get(r["image_url"]).content for r in rounds]
    assert images[0] == images[1], "everyone sees the very same pixels"
    locked = [
        client.post(r["answer_url"], json={"choice": c}, headers=auth(p)).json()
        for r, p, c in zip(rounds, (ada, bob), ("Bag", "Coat"), strict=True)
    ]
    # While the countdown runs an answer is only acknowledged: nothing anywhere tells the truth or the machine's
    # answer, not the reply, the reveal, the images, the stats, the boards or the exports.
    assert [a["locked"] for a in locked] == [True, True] and locked[0]["choice"] == "Bag"
    assert not any(key in locked[0] for key in ("true_label", "model_label", "correct", "score"))
    hidden = client.get(locked[0]["reveal_url"], headers=auth(ada))
    assert hidden.status_code == 409 and hidden.json()["detail"] == messages.TRUTH_HIDDEN_UNTIL_CLOSE
    assert client.get(f"/rounds/{rounds[0]['round_id']}/original.png").status_code == 404
    assert client.get(f"/api/v1/events/{event['code']}/stats").json()["answers"] == 0
    assert client.get("/api/v1/tally").json()["answers"] == 0
    assert client.get("/api/v1/leaderboard").json() == []
    assert len(client.get("/api/v1/export/answers.csv").text.strip().splitlines()) == 1, "header only"
    again = client.post("/api/v1/rounds", headers=auth(ada))
    assert again.status_code == 409 and again.json()["detail"] == messages.EVENT_WAIT_NEXT_IMAGE
    # The countdown ends: the truth shows, late answers are refused, the host may show the next (and last) image.
    past = datetime.now(UTC) - timedelta(seconds=5)
    run_sql(client, "UPDATE shared_rounds SET closes_at = :t", t=past)
    answers = [client.get(a["reveal_url"], headers=auth(p)).json() for a, p in zip(locked, (ada, bob), strict=True)]
    assert answers[0]["true_label"] == answers[1]["true_label"]
    assert answers[0]["model_label"] == answers[1]["model_label"]
    assert client.get(f"/rounds/{rounds[0]['round_id']}/original.png").status_code == 200
    assert client.get(f"/api/v1/events/{event['code']}/stats").json()["answers"] == 2
    assert client.get("/api/v1/tally").json()["answers"] == 2
    assert len(client.get("/api/v1/export/answers.csv").text.strip().splitlines()) == 3
    late = join_event(client, event, "Late")
    assert client.post("/api/v1/rounds", headers=auth(late)).status_code == 409
    host_action(client, event, "next-image")
    run_sql(client, "UPDATE shared_rounds SET closes_at = :t", t=past)
    assert host_action(client, event, "next-image", 409)["detail"] == messages.EVENT_ALL_SHARED_DONE


def test_late_answer_to_a_together_image_is_refused(client: TestClient) -> None:
    event = new_event(client, style="together", round_seconds=30)
    ada = join_event(client, event, "Ada")
    host_action(client, event, "start")
    host_action(client, event, "next-image")
    created = client.post("/api/v1/rounds", headers=auth(ada)).json()
    run_sql(client, "UPDATE shared_rounds SET closes_at = :t", t=datetime.now(UTC) - timedelta(seconds=5))
    late = client.post(created["answer_url"], json={"choice": "Bag"}, headers=auth(ada))
    assert late.status_code == 409 and late.json()["detail"] == messages.EVENT_TIME_UP


def test_removed_player_cannot_play_and_leaves_the_board(client: TestClient) -> None:
    event = new_event(client)
    ada, eve = join_event(client, event, "Ada"), join_event(client, event, "Eve")
    host_action(client, event, "start")
    play_round(client, ada)
    play_round(client, eve)
    removed = client.delete(f"/api/v1/events/{event['code']}/players/{eve['player_id']}", headers=host_auth(event))
    assert removed.status_code == 200 and removed.json()["removed"] is True
    refused = client.post("/api/v1/rounds", headers=auth(eve))
    assert refused.status_code == 403 and refused.json()["detail"] == messages.PLAYER_REMOVED
    board = client.get(f"/api/v1/leaderboard?event={event['code']}").json()
    assert [row["nickname"] for row in board] == ["Ada"]
    assert client.get(f"/api/v1/events/{event['code']}/stats").json()["players"] == 1


def test_stats_leaderboard_and_exports_keep_events_apart(client: TestClient) -> None:
    event, other = new_event(client, eps=8 / 255), new_event(client)
    ada, bob = join_event(client, event, "Ada"), join_event(client, other, "Bob")
    solo = new_player(client, "Solo")
    host_action(client, event, "start")
    host_action(client, other, "start")
    for _ in range(3):
        play_round(client, ada)
    play_round(client, bob)
    play_round(client, solo)
    stats = client.get(f"/api/v1/events/{event['code']}/stats").json()
    assert stats["players"] == 1 and stats["answers"] == 3
    for who in ("human", "model"):
        part = stats[who]
        assert part["n"] == 3 and part["accuracy"] == pytest.approx(part["correct"] / 3)
        low, high = part["ci95"]
        assert 0.0 <= low <= part["accuracy"] <= high <= 1.0
    assert len(stats["by_eps"]) == 1 and stats["by_eps"][0]["eps_text"] == "8/255"
    assert stats["by_eps"][0]["human"]["n"] == 3
    assert client.get("/api/v1/events/ZZZZZZ/stats").status_code == 404

    assert {r["nickname"] for r in client.get(f"/api/v1/leaderboard?event={event['code']}").json()} == {"Ada"}
    assert {r["nickname"] for r in client.get("/api/v1/leaderboard").json()} == {"Ada", "Bob", "Solo"}
    assert client.get("/api/v1/tally").json()["answers"] == 5, "global totals include event answers"
    assert client.get(f"/api/v1/tally?event={event['code']}").json()["answers"] == 3
    assert client.get("/api/v1/leaderboard?event=ZZZZZZ").status_code == 404

    exported = client.get(f"/api/v1/events/{event['code']}/answers.csv?download=1")
    assert exported.headers["content-disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 3 and {r["nickname"] for r in rows} == {"Ada"} and {r["event"] for r in rows} == {event["code"]}
    as_json = client.get(f"/api/v1/events/{event['code']}/answers.json").json()
    assert [r["answer_id"] for r in as_json] == [r["answer_id"] for r in rows]
    everything = list(csv.DictReader(io.StringIO(client.get("/api/v1/export/answers.csv").text)))
    assert len(everything) == 5
    assert {r["event"] for r in everything} == {event["code"], other["code"], ""}
    assert client.get("/api/v1/events/ZZZZZZ/answers.csv").status_code == 404
