"""The text rounds' JSON API (issue #18) on SQLite and PostgreSQL, against the real model service: a round says
nothing about its answer, is answered once, and its reveal carries the original and shown text with the changed
words; image and text rounds keep to their own endpoints; a text event plays its rounds through the same API."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app import messages
from app.ml.packs.text.tokens import words
from tests.helpers import auth, new_event, new_player

CREATED_KEYS = {"round_id", "kind", "shown_text", "choices", "opponent", "attack", "budget", "answer_url"}
CATEGORIES = ["animal", "plant", "food", "made object", "person", "place", "body part", "substance"]


def test_a_text_round_over_the_api(client: TestClient) -> None:
    player = new_player(client, "reader")
    listed = client.get("/api/v1/text/opponents").json()
    assert [o["name"] for o in listed] == ["definitions-tfidf", "definitions-minilm"]
    assert listed[0]["class_names"] == CATEGORIES and 0.8 < listed[0]["clean_accuracy"] < 0.95

    created = client.post("/api/v1/text/rounds", headers=auth(player), json={"attack": "deepwordbug"})
    assert created.status_code == 201, created.text
    round_ = created.json()
    assert set(round_) == CREATED_KEYS and round_["choices"] == CATEGORIES and round_["attack"] == "deepwordbug"
    assert round_["budget"] == 0.1 and round_["shown_text"]
    url = f"/api/v1/text/rounds/{round_['round_id']}"
    assert client.get(url, headers=auth(player)).status_code == 409, "no reveal before the answer"
    # While it waits, the player's pending round is this one, on either kind's endpoint.
    again = client.post("/api/v1/text/rounds", headers=auth(player)).json()
    assert again["round_id"] == round_["round_id"]
    image = client.post("/api/v1/rounds", headers=auth(player))
    assert image.status_code == 409 and image.json()["detail"] == messages.ROUND_IS_TEXT
    assert client.get(f"/rounds/{round_['round_id']}/adversarial.png").status_code == 404, "a text has no image"

    reply = client.post(round_["answer_url"], headers=auth(player), json={"choice": "place"})
    assert reply.status_code == 200, reply.text
    reveal = reply.json()
    assert reveal["shown_text"] == round_["shown_text"] and reveal["choice"] == "place"
    assert reveal["correct"] == (reveal["true_label"] == "place")
    original, shown = words(reveal["original_text"]), words(reveal["shown_text"])
    assert len(original) == len(shown) == reveal["n_words"]
    for change in reveal["changed_words"]:
        assert original[change["position"]] == change["original"] != change["shown"] == shown[change["position"]]
    unchanged = {c["position"] for c in reveal["changed_words"]}
    assert all(a == b for i, (a, b) in enumerate(zip(original, shown, strict=True)) if i not in unchanged)
    assert len(reveal["changed_words"]) <= int(0.1 * reveal["n_words"] + 1e-9)
    assert 0 < reveal["model_confidence"] <= 1 and len(reveal["model_top3"]) == 3
    assert reveal["points"] == (0 if not reveal["correct"] else reveal["points"])
    assert client.get(url, headers=auth(player)).json() == {**reveal, "score": reveal["score"]}
    second = client.post(round_["answer_url"], headers=auth(player), json={"choice": "place"})
    assert second.status_code == 409

    stranger = new_player(client, "stranger")
    assert client.get(url, headers=auth(stranger)).status_code == 404
    bad = client.post("/api/v1/text/rounds", headers=auth(stranger), json={"attack": "pgd"})
    assert bad.status_code == 422
    unknown = client.post("/api/v1/text/rounds", headers=auth(stranger), json={"opponent": "nope"})
    assert unknown.status_code == 422 and "definitions-tfidf" in unknown.json()["detail"]


def test_a_text_event_plays_through_the_same_api(client: TestClient) -> None:
    event = new_event(client, phases=[{"opponent": "definitions-tfidf", "attack": "textfooler"}], rounds=2)
    assert client.get(f"/api/v1/events/{event['code']}").status_code == 200
    started = client.post(
        f"/api/v1/events/{event['code']}/start", headers={"Authorization": f"Bearer {event['host_token']}"}
    )
    assert started.status_code == 200, started.text
    player = new_player(client, "ann", event_code=event["code"])
    round_ = client.post("/api/v1/text/rounds", headers=auth(player))
    assert round_.status_code == 201, round_.text
    assert round_.json()["budget"] in (0.1, 0.2, 0.3)
    reply = client.post(round_.json()["answer_url"], headers=auth(player), json={"choice": "animal"})
    assert reply.status_code == 200 and "original_text" in reply.json()
