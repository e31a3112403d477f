"""The policy lab and pick the moments over JSON (issue 19), on the real model service and both databases: the lab's
episodes replay bit for bit, a round's result is the server's own episode of the player's picks, played once, and
it reaches the board, the stats and the exports with its ids unchanged."""

from __future__ import annotations

import csv
import io

import numpy as np
from fastapi.testclient import TestClient

from app import messages
from tests.helpers import auth, join_event, new_event, new_player, start_event


def test_the_lab_gives_the_same_episode_bit_for_bit_and_counts_its_attacked_steps(client: TestClient) -> None:
    query = {"attack": "timed", "budget": 0.2, "seed": 1000, "attacked_steps": 3}
    first, second = (
        client.get("/api/v1/policy/episodes", params=query),
        client.get("/api/v1/policy/episodes", params=query),
    )
    assert first.status_code == 200, first.text
    assert first.json() == second.json()
    body = first.json()
    assert body["clean"]["return"] == 500 and body["clean"]["attacked_steps"] == []
    attacked = body["attacked"]
    assert 0 < len(attacked["attacked_steps"]) <= 3 and attacked["return"] < 500 and attacked["terminated"]
    states = np.array(attacked["states"], dtype=np.float32)
    assert states.shape == (attacked["return"] + 1, 4)
    assert np.array_equal(np.array(attacked["states"]), states.astype(np.float64)), "the values are float32 exactly"
    assert body["clean"]["states"][0] == attacked["states"][0], "the same start: the same seed"
    assert "strongly prefers" in body["words"]
    refused = client.get("/api/v1/policy/episodes", params={**query, "attack": "pgd"})
    assert refused.status_code == 422


def test_a_round_is_scored_on_the_servers_episode_of_the_picks_once(client: TestClient) -> None:
    player, other = new_player(client, "picker"), new_player(client, "nosy")
    started = client.post("/api/v1/policy/rounds", headers=auth(player), json={"budget": 0.2, "attacked_steps": 3})
    assert started.status_code == 201, started.text
    round_ = started.json()
    assert not round_["played"] and round_["heuristic"] is None and round_["player"] is None
    assert round_["clean"]["seed"] == round_["seed"] and round_["attacked_steps"] == 3
    again = client.post("/api/v1/policy/rounds", headers=auth(player), json={"budget": 0.05, "attacked_steps": 1})
    assert again.json()["round_id"] == round_["round_id"], "the unplayed round comes back"
    url = f"/api/v1/policy/rounds/{round_['round_id']}"
    too_many = client.post(url + "/picks", headers=auth(player), json={"steps": [1, 2, 3, 4]})
    assert too_many.status_code == 422 and too_many.json()["detail"] == messages.POLICY_STEPS_INVALID.format(
        k=3, last=499
    )
    assert client.get(url, headers=auth(other)).status_code == 403
    assert client.post(url + "/picks", headers=auth(other), json={"steps": [1]}).status_code == 403
    played = client.post(url + "/picks", headers=auth(player), json={"steps": [30, 10, 20]})
    assert played.status_code == 200, played.text
    result = played.json()
    assert result["played"] and result["picks"] == [10, 20, 30]
    mine, heuristic = result["player"], result["heuristic"]
    assert set(mine["attacked_steps"]) <= {10, 20, 30} and mine["attacked_steps"][0] == 10
    assert 0 < len(heuristic["attacked_steps"]) <= 3
    expected = (
        "win" if mine["return"] < heuristic["return"] else "tie" if mine["return"] == heuristic["return"] else "loss"
    )
    assert result["outcome"] == expected and (result["points"] > 0) == (expected != "loss")
    assert client.get(url, headers=auth(player)).json() == result, "replayed from the seed: the same episodes"
    replay = client.post(url + "/picks", headers=auth(player), json={"steps": [5]})
    assert replay.status_code == 409 and replay.json()["detail"] == messages.POLICY_ROUND_PLAYED
    assert client.get("/api/v1/policy/rounds/" + "0" * 32, headers=auth(player)).status_code == 404
    assert client.post("/api/v1/policy/rounds", json={}).status_code == 401

    board = client.get("/api/v1/policy/leaderboard").json()
    assert [(row["nickname"], row["rounds"], row["points"]) for row in board] == [("picker", 1, result["points"])]
    stats = client.get("/api/v1/policy/stats").json()
    assert stats["n"] == 1 and stats["wins"] == (expected == "win")
    (setting,) = stats["by_setting"]
    assert (setting["attacked_steps"], setting["budget"], setting["n"]) == (3, 0.2, 1)
    assert (
        setting["player_steps"]["mean"] == mine["return"] and setting["heuristic_steps"]["mean"] == heuristic["return"]
    )

    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/export/policy_rounds.csv").text)))
    (row,) = rows
    assert row["round_id"] == round_["round_id"] and row["player_id"] == player["player_id"]
    assert row["picks"] == "10 20 30" and int(row["player_steps"]) == mine["return"] and row["outcome"] == expected
    (exported,) = client.get("/api/v1/export/policy_rounds.json").json()
    assert exported["round_id"] == round_["round_id"] and exported["heuristic_picks"] == heuristic["attacked_steps"]
    lines = client.get("/api/v1/export/policy_rounds.jsonl").text.splitlines()
    assert len(lines) == 1
    download = client.get("/api/v1/export/policy_rounds.csv?download=1")
    assert "attachment" in download.headers["content-disposition"]


def test_an_event_plays_pick_the_moments_at_its_own_pace(client: TestClient) -> None:
    refused = client.post("/api/v1/events", json={"name": "Room", "mode": "policy", "style": "together"})
    assert refused.status_code == 422 and refused.json()["detail"] == messages.EVENT_MODE_INVALID
    event = new_event(client, mode="policy", rounds=1)
    player = join_event(client, event, "roomie")
    body = {"budget": 0.1, "attacked_steps": 1}
    lobby = client.post("/api/v1/policy/rounds", headers=auth(player), json=body)
    assert lobby.status_code == 409 and lobby.json()["detail"] == messages.EVENT_NOT_STARTED
    start_event(client, event)
    images = client.post("/api/v1/rounds", headers=auth(player))
    assert images.status_code == 409 and images.json()["detail"] == messages.EVENT_POLICY_ONLY
    round_ = client.post("/api/v1/policy/rounds", headers=auth(player), json=body).json()
    played = client.post(f"/api/v1/policy/rounds/{round_['round_id']}/picks", headers=auth(player), json={"steps": [3]})
    assert played.status_code == 200
    done = client.post("/api/v1/policy/rounds", headers=auth(player), json=body)
    assert done.status_code == 409 and done.json()["detail"] == messages.EVENT_ROUNDS_DONE
    outsider = new_player(client, "outsider")
    assert client.post("/api/v1/policy/rounds", headers=auth(outsider), json=body).status_code == 201
    board = client.get("/api/v1/policy/leaderboard", params={"event": event["code"]}).json()
    assert [row["nickname"] for row in board] == ["roomie"]
    assert client.get("/api/v1/policy/stats", params={"event": event["code"]}).json()["n"] == 1
    (row,) = client.get("/api/v1/export/policy_rounds.json").json()
    assert row["event"] == event["code"] and row["round_id"] == round_["round_id"]

    images_event = new_event(client)
    start_event(client, images_event)
    classifier = join_event(client, images_event, "classifier")
    wrong_game = client.post("/api/v1/policy/rounds", headers=auth(classifier), json=body)
    assert wrong_game.status_code == 409 and wrong_game.json()["detail"] == messages.EVENT_IMAGES_ONLY
