"""The JSON API contract from the playable-core issue, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from app import messages
from tests.helpers import ADMIN, auth, new_player, new_round

ROUND_KEYS = {
    "round_id",
    "task",
    "flash_ms",
    "image_url",
    "choices",
    "opponent",
    "attack",
    "norm",
    "eps",
    "eps_text",
    "answer_url",
}
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def png(client: TestClient, url: str) -> np.ndarray:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_healthz_reports_model_device_and_database(client: TestClient) -> None:
    response = client.get("/healthz", headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["model"]["ok"] is True
    assert body["device"] == "cpu"
    assert body["database"]["ok"] is True


def test_create_player_returns_id_and_token(client: TestClient) -> None:
    response = client.post("/api/v1/players", json={"nickname": "  Ada  "})
    assert response.status_code == 201
    body = response.json()
    assert body["nickname"] == "Ada"
    assert len(body["player_id"]) == 32 and len(body["token"]) >= 40
    twin = new_player(client, "Ada")
    assert twin["player_id"] != body["player_id"], "duplicate nicknames are allowed as separate players"


def test_nickname_rules(client: TestClient) -> None:
    for bad in ["", "   ", "x" * 25, "tab\there", "bell\x07"]:
        response = client.post("/api/v1/players", json={"nickname": bad})
        assert response.status_code == 422, bad
        assert response.json()["detail"] == messages.NICKNAME_INVALID
    assert client.post("/api/v1/players", json={}).status_code == 422
    assert client.post("/api/v1/players", json={"nickname": "ok", "admin": True}).status_code == 422
    assert client.post("/api/v1/players", json={"nickname": "x" * 24}).status_code == 201
    assert client.post("/api/v1/players", json={"nickname": "Zoë 🙂"}).status_code == 201


def test_round_reveals_nothing_before_the_answer(client: TestClient) -> None:
    player = new_player(client)
    response = client.post("/api/v1/rounds", headers=auth(player))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == ROUND_KEYS
    assert body["choices"] == FASHION
    assert len(body["round_id"]) >= 22
    assert body["image_url"].endswith(f"/rounds/{body['round_id']}/adversarial.png")
    lowered = {k.lower() for k in response.headers}
    assert not any("label" in k or "model" in k for k in lowered)
    image = client.get(body["image_url"])
    assert image.status_code == 200
    decoded = Image.open(io.BytesIO(image.content))
    assert decoded.size == (28, 28)
    assert not decoded.info.get("text") and not any(k.lower().startswith("label") for k in decoded.info)
    for kind in ("original", "perturbation"):
        assert client.get(f"/rounds/{body['round_id']}/{kind}.png").status_code == 404
    assert client.get(f"/api/v1/rounds/{body['round_id']}", headers=auth(player)).status_code == 409


def test_answer_scores_reveals_and_is_final(client: TestClient) -> None:
    player = new_player(client)
    round_ = new_round(client, player)
    response = client.post(round_["answer_url"], json={"choice": "Bag"}, headers=auth(player))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["true_label"] in FASHION and body["model_label"] in FASHION
    assert body["correct"] == (body["true_label"] == "Bag")
    assert body["model_correct"] == (body["model_label"] == body["true_label"])
    assert 0.0 <= body["model_confidence"] <= 1.0
    assert body["model_top3"][0]["label"] == body["model_label"]
    assert body["model_top3"][0]["probability"] >= body["model_top3"][1]["probability"]
    assert body["clean_model_label"] == body["true_label"], "rounds use images the model gets right when clean"
    assert body["score"] == body["points"] and body["points"] >= (1 if body["correct"] else 0)
    assert body["response_ms"] >= 0
    again = client.post(round_["answer_url"], json={"choice": "Bag"}, headers=auth(player))
    assert again.status_code == 409
    assert again.json()["detail"] == messages.ROUND_ALREADY_ANSWERED
    shown = png(client, body["adversarial_url"]).astype(int)
    original = png(client, body["original_url"]).astype(int)
    perturbation = png(client, body["perturbation_url"])
    assert np.abs(shown - original).max() <= round(body["eps"] * 255)
    assert perturbation.shape == original.shape
    replay = client.get(f"/api/v1/rounds/{round_['round_id']}", headers=auth(player))
    assert replay.status_code == 200 and replay.json()["true_label"] == body["true_label"]


def test_answer_error_codes(client: TestClient) -> None:
    owner, stranger = new_player(client, "owner"), new_player(client, "stranger")
    round_ = new_round(client, owner)
    url = round_["answer_url"]
    assert client.post(url, json={"choice": "Bag"}).status_code == 401
    assert client.post(url, json={"choice": "Bag"}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post(url, json={"choice": "Bag"}, headers={"Authorization": "Basic abc"}).status_code == 401
    someone_else = client.post(url, json={"choice": "Bag"}, headers=auth(stranger))
    assert someone_else.status_code == 404
    assert someone_else.json()["detail"] == messages.ROUND_NOT_FOUND
    unknown = client.post("/api/v1/rounds/doesnotexist/answer", json={"choice": "Bag"}, headers=auth(owner))
    assert unknown.status_code == 404
    not_offered = client.post(url, json={"choice": "Hat"}, headers=auth(owner))
    assert not_offered.status_code == 422
    assert not_offered.json()["detail"] == messages.CHOICE_NOT_OFFERED
    assert client.post(url, json={}, headers=auth(owner)).status_code == 422
    assert client.post(url, content=b"not json", headers=auth(owner)).status_code == 422
    assert client.post(url, json={"choice": "Bag"}, headers=auth(owner)).status_code == 200


def test_round_without_token_is_refused(client: TestClient) -> None:
    response = client.post("/api/v1/rounds")
    assert response.status_code == 401
    assert response.json()["detail"] == messages.PLAYER_REQUIRED


def test_staircase_moves_with_answers(client: TestClient) -> None:
    player = new_player(client)
    first = new_round(client, player)
    reveal = client.post(first["answer_url"], json={"choice": "Bag"}, headers=auth(player)).json()
    second = new_round(client, player)
    if reveal["correct"]:
        assert second["eps"] > first["eps"], "a right answer moves one step up"
    else:
        assert second["eps"] == first["eps"], "the lowest step holds after a wrong answer"


def test_leaderboard_tally_and_csv_export(client: TestClient) -> None:
    alice, bob = new_player(client, "alice"), new_player(client, "=cmd|' /C calc'!A0")
    answers = []
    for player in (alice, alice, bob):
        round_ = new_round(client, player)
        answers.append(client.post(round_["answer_url"], json={"choice": "Coat"}, headers=auth(player)).json())
    new_round(client, bob)  # unanswered rounds are not in the stats
    board = client.get("/api/v1/leaderboard").json()
    by_id = {row["player_id"]: row for row in board}
    assert by_id[alice["player_id"]]["rounds"] == 2 and by_id[bob["player_id"]]["rounds"] == 1
    assert [row["rank"] for row in board] == list(range(1, len(board) + 1))
    assert board == sorted(board, key=lambda r: -r["score"]) or board[0]["score"] >= board[-1]["score"]
    tally = client.get("/api/v1/tally").json()
    assert tally["answers"] == 3
    assert tally["human_accuracy"] == sum(a["correct"] for a in answers) / 3
    assert tally["model_accuracy"] == sum(a["model_correct"] for a in answers) / 3

    response = client.get("/api/v1/export/answers.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "content-disposition" not in response.headers
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 3
    assert list(rows[0]) == [
        "answer_id", "answered_at", "player_id", "nickname", "round_id", "pack", "model", "attack", "eps",
        "true_label", "human_answer", "model_answer", "model_confidence", "human_correct", "model_correct",
        "response_ms", "event", "phase", "shared_image", "condition", "norm", "queries", "flash_ms", "shown_ms",
        "timing_flagged", "defense_verdict", "kind", "original_text", "shown_text", "steps_run", "item_id",
    ]  # fmt: skip
    assert {(r["event"], r["phase"], r["shared_image"]) for r in rows} == {("", "", "")}, "no event: empty cells"
    assert {r["item_id"] for r in rows} == {""}, "fresh images: no item of a fixed set"
    assert all(0 <= int(r["steps_run"]) <= 20 for r in rows), "PGD rounds say how many steps their image took"
    assert {r["model"] for r in rows} == {"fashion-cnn"} and {r["attack"] for r in rows} == {"pgd"}
    assert all(r["human_answer"] == "Coat" for r in rows)
    assert all(int(r["response_ms"]) >= 0 for r in rows)
    assert {r["nickname"] for r in rows} == {"alice", "'=cmd|' /C calc'!A0"}, "formula injection is neutralised"
    download = client.get("/api/v1/export/answers.csv?download=1")
    assert download.headers["content-disposition"] == 'attachment; filename="answers.csv"'
    as_json = client.get("/api/v1/export/answers.json").json()
    assert len(as_json) == 3 and as_json[0]["human_correct"] in (True, False)
    assert client.get("/api/v1/export/answers.xml").status_code == 422


def test_attack_catalog_lists_every_attack_with_its_parameters(client: TestClient) -> None:
    response = client.get("/api/v1/attacks")
    assert response.status_code == 200
    attacks = {a["name"]: a for a in response.json()}
    assert {"fgsm", "pgd", "pgd-l2", "cw", "deepfool", "square", "nes", "hopskipjump", "genattack"} <= set(attacks)
    assert {"white-box", "score", "decision"} <= {a["threat_model"] for a in attacks.values()}
    pgd = attacks["pgd"]
    assert pgd["norm"] == "linf" and pgd["playable_in_rounds"] is True
    steps = next(p for p in pgd["params"] if p["name"] == "steps")
    assert steps["default"] == 20 and steps["min"] == 1
    assert len(pgd["explanation"]) > 80, "a plain-words paragraph for the reveal"
    assert attacks["hopskipjump"]["playable_in_rounds"] is True and attacks["cw"]["norm"] == "l2"
    assert "fashion-cnn" in attacks["hopskipjump"]["playable_against"]


def test_round_urls_are_those_url_for_builds_behind_a_root_path_too(client: TestClient) -> None:
    """The round replies build their URLs without url_for (it walks every route): the same URLs it gives."""
    for base, root_path in (("http://testserver", ""), ("https://arena.example:8443", "/arena")):
        browser = TestClient(client.app, base_url=base, root_path=root_path)
        browser.portal = client.portal  # the running app's event loop, where its model service lives
        player = new_player(browser)
        round_ = new_round(browser, player)
        app = client.app
        expected = {
            kind: str(
                app.url_path_for("round_image", round_id=round_["round_id"], kind=kind).make_absolute_url(
                    f"{base}{root_path}/"
                )
            )
            for kind in ("adversarial", "original", "perturbation")
        }
        assert round_["image_url"] == expected["adversarial"]
        answer_url = app.url_path_for("answer_round", round_id=round_["round_id"]).make_absolute_url(
            f"{base}{root_path}/"
        )
        assert round_["answer_url"] == str(answer_url)
        reveal = browser.post(
            round_["answer_url"].removeprefix(base + root_path), headers=auth(player), json={"choice": "Bag"}
        )
        assert reveal.status_code == 200, reveal.text
        urls = reveal.json()
        assert (urls["original_url"], urls["adversarial_url"], urls["perturbation_url"]) == (
            expected["original"],
            expected["adversarial"],
            expected["perturbation"],
        )
