"""The JSON API of "fool the machine yourself": a round on a definition the opponent gets right, a live check that
stores nothing, a submission the server re-checks, one submission per round; a second player's validation round
without the truth until its one answer; and the dataset export with the model's answers and the validations."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from app.game.fool_text import texts
from tests.conftest import empty_tables
from tests.fool_text import FOOLING, HOLDING, TOOTH, fool_client
from tests.helpers import auth, from_address, new_player


@pytest.fixture
def api(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(texts, "draw_indices", lambda n: [TOOTH])
    client, _service = fool_client(database_url)
    with client:
        yield client
    empty_tables(database_url)


def test_a_round_is_checked_live_and_won_on_submit(api: Any) -> None:
    writer = auth(new_player(api, "writer"))
    started = api.post("/api/v1/fool/text/rounds", headers=writer)
    assert started.status_code == 201, started.text
    body = started.json()
    edit_id = body["edit_id"]
    assert body["status"] == "open" and body["category"] == "body part" and body["before"]["label"] == "body part"
    assert body["n_words"] == 9 and body["allowed_changes"] == 2 and body["budget"] == 0.25 and body["edited"] is None
    assert len(body["before"]["top3"]) == 3 and body["class_names"][0] == "animal"
    again = api.post("/api/v1/fool/text/rounds", headers=writer, json={"opponent": "definitions-tfidf"})
    assert again.json()["edit_id"] == edit_id  # the open round comes back

    check = api.post(f"/api/v1/fool/text/rounds/{edit_id}/check", headers=writer, json={"edited": FOOLING})
    assert check.status_code == 200, check.text
    verdict = check.json()
    assert verdict["fooled"] and verdict["wins"] and verdict["problems"] == []
    assert verdict["answer"]["label"] == "made object" and verdict["words_changed"] == 1
    assert verdict["similarity"] >= verdict["similarity_floor"] == 0.8
    assert api.get(f"/api/v1/fool/text/rounds/{edit_id}", headers=writer).json()["edited"] is None  # nothing stored

    over = api.post(
        f"/api/v1/fool/text/rounds/{edit_id}/submit",
        headers=writer,
        json={"edited": "little bump on the chewing surface of a tooth"},
    )
    assert over.status_code == 422 and "You changed 3 words" in over.json()["detail"]
    nosy = auth(new_player(api, "nosy"))
    assert (
        api.post(f"/api/v1/fool/text/rounds/{edit_id}/submit", headers=nosy, json={"edited": FOOLING}).status_code
        == 404
    )
    won = api.post(f"/api/v1/fool/text/rounds/{edit_id}/submit", headers=writer, json={"edited": FOOLING})
    assert won.status_code == 200, won.text
    assert won.json()["round"]["status"] == "won" and won.json()["round"]["after"]["label"] == "made object"
    again = api.post(f"/api/v1/fool/text/rounds/{edit_id}/submit", headers=writer, json={"edited": FOOLING})
    assert again.status_code == 409
    assert api.post("/api/v1/fool/text/rounds", headers={}).status_code == 401
    bad = api.post("/api/v1/fool/text/rounds", headers=writer, json={"opponent": "fashion-cnn"})
    assert bad.status_code == 422


def test_a_second_player_validates_it_and_the_export_has_everything(api: Any) -> None:
    writer = auth(new_player(api, "=writer"))
    reader = auth(new_player(api, "reader"))
    assert api.post("/api/v1/fool/text/validations", headers=reader).status_code == 404  # nothing to read yet
    edit_id = api.post("/api/v1/fool/text/rounds", headers=writer).json()["edit_id"]
    api.post(f"/api/v1/fool/text/rounds/{edit_id}/submit", headers=writer, json={"edited": FOOLING}).raise_for_status()
    lost_id = api.post("/api/v1/fool/text/rounds", headers=writer).json()["edit_id"]
    lost = api.post(f"/api/v1/fool/text/rounds/{lost_id}/submit", headers=writer, json={"edited": HOLDING})
    assert lost.json()["round"]["status"] == "lost"
    assert api.post("/api/v1/fool/text/validations", headers=writer).status_code == 404  # never one's own

    shown = api.post("/api/v1/fool/text/validations", headers=reader)
    assert shown.status_code == 201
    question = shown.json()
    assert question["text"] == FOOLING and not question["answered"]
    hidden = ("category", "original", "model_before", "model_after", "agrees", "choice")
    assert all(question[key] is None for key in hidden)  # the truth is withheld
    vid = question["validation_id"]
    assert api.get(f"/api/v1/fool/text/validations/{vid}", headers=reader).json()["category"] is None
    assert api.get(f"/api/v1/fool/text/validations/{vid}", headers=writer).status_code == 404
    body_part = question["class_names"].index("body part")
    answered = api.post(f"/api/v1/fool/text/validations/{vid}/answer", headers=reader, json={"choice": body_part})
    assert answered.status_code == 200
    reveal = answered.json()
    assert reveal["agrees"] is True and reveal["category"] == "body part" and reveal["model_after"] == "made object"
    assert reveal["original"] == "small elevation on the grinding surface of a tooth"
    second = api.post(f"/api/v1/fool/text/validations/{vid}/answer", headers=reader, json={"choice": 0})
    assert second.status_code == 409  # one answer per validation round

    rows = api.get("/api/v1/exports/human-texts").json()
    assert [row["edit_id"] for row in rows] == [edit_id, lost_id]  # ids as stored, oldest submission first
    won_row, lost_row = rows
    assert won_row["fooled"] and won_row["validated"] and won_row["validations"] == won_row["validations_agreeing"] == 1
    assert won_row["original"] == reveal["original"] and won_row["edited"] == FOOLING
    assert won_row["model_before"] == "body part" and won_row["model_after"] == "made object"
    assert won_row["words_changed"] == 1 and won_row["similarity"] >= won_row["similarity_floor"]
    assert sum(won_row["model_after_probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert won_row["validation_answers"][0]["answer"] == "body part" and won_row["nickname"] == "=writer"
    assert not lost_row["fooled"] and lost_row["validations"] == 0 and not lost_row["validated"]

    download = api.get("/api/v1/exports/human-texts?format=csv&download=1")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert 'filename="human-texts.csv"' in download.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["edit_id"] for row in table] == [edit_id, lost_id]
    assert table[0]["nickname"] == "'=writer"  # free text a spreadsheet would run is escaped, ids never
    assert json.loads(table[0]["validation_answers"])[0]["agrees"] is True and table[0]["validated"] == "true"
    assert api.get("/api/v1/exports/human-texts?format=xml").status_code == 422


def test_live_checks_are_rate_limited_per_player(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(texts, "draw_indices", lambda n: [TOOTH])
    client, service = fool_client(database_url, rate_limit_per_player="3/minute")
    with client:
        writer, other = auth(new_player(client, "writer")), auth(new_player(client, "other"))
        edit_id = client.post("/api/v1/fool/text/rounds", headers=writer).json()["edit_id"]
        url = f"/api/v1/fool/text/rounds/{edit_id}/check"
        codes = [client.post(url, headers=writer, json={"edited": FOOLING}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        asked = len(service.classified)
        assert client.post(url, headers=writer, json={"edited": FOOLING}).status_code == 429
        assert len(service.classified) == asked  # refused before any work
        # the other player's budget is their own (their check of a round not theirs is a 404, not a 429)
        assert client.post(url, headers=other, json={"edited": FOOLING}).status_code == 404
    empty_tables(database_url)


def test_the_editors_classifications_take_their_client_addresss_one_share(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 16: two writers behind one address and one behind another; each draws a round (the opponent is asked
    # about candidate texts) and checks an edit. Each classification names its address's share, and its writer.
    monkeypatch.setattr(texts, "draw_indices", lambda n: [TOOTH])
    client, service = fool_client(database_url)
    with client:
        elsewhere = from_address(client, "192.0.2.7")
        writers = [(client, new_player(client, "one")), (client, new_player(client, "two"))]
        writers.append((elsewhere, new_player(elsewhere, "far")))
        for http, writer in writers:
            edit_id = http.post("/api/v1/fool/text/rounds", headers=auth(writer)).json()["edit_id"]
            url = f"/api/v1/fool/text/rounds/{edit_id}/check"
            assert http.post(url, headers=auth(writer), json={"edited": FOOLING}).status_code == 200
        here, there = "address:testclient", "address:192.0.2.7"
        assert service.shares == [here] * 4 + [there] * 2
        assert [asked[2] for asked in service.classified] == [w["player_id"] for _, w in writers for _ in (1, 2)]
    empty_tables(database_url)
