"""Every id in every export equals the API's: new ids never start with a character a spreadsheet reads as a formula,
and the CSV's formula escaping touches free text (nicknames) only, never an id, old ids included."""

from __future__ import annotations

import csv
import io
import json
import secrets

import pytest
from fastapi.testclient import TestClient

from app.game import rounds
from app.stats.export import ANSWER_COLUMNS, csv_line
from tests.helpers import auth, new_player, new_round

FORMULA_STARTS = ("-", "=", "+", "@")
ID_COLUMNS = ("answer_id", "player_id", "round_id", "shared_image")


def test_new_round_ids_never_start_with_a_formula_character() -> None:
    # base64url starts 1 id in 64 with '-': of 2,000, about 31 would.
    ids = [rounds.new_round_id() for _ in range(2000)]
    assert not [i for i in ids if i.startswith(FORMULA_STARTS)]
    assert len(set(ids)) == len(ids)


def test_a_csv_round_trip_keeps_every_id_and_still_escapes_a_nickname() -> None:
    old_style = [secrets.token_urlsafe(16) for _ in range(2000)] + ["-abc", "=1+1", "+x", "@y"]
    rows = [
        {column: None for column in ANSWER_COLUMNS}
        | {"answer_id": i, "player_id": i, "round_id": i, "shared_image": i, "nickname": '=HYPERLINK("x")'}
        for i in old_style
    ]
    parsed = list(csv.DictReader(io.StringIO("".join(csv_line(row) for row in rows)), fieldnames=ANSWER_COLUMNS))
    for row, back in zip(rows, parsed, strict=True):
        assert {c: back[c] for c in ID_COLUMNS} == {c: row[c] for c in ID_COLUMNS}
        assert back["nickname"] == '\'=HYPERLINK("x")', "free text is still escaped"


def test_every_export_carries_the_apis_ids(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rounds stored before ids changed alphabet can start with '-': the exports must keep them as they are.
    legacy = iter(["-legacy-round-1", "-legacy-round-2", "-legacy-round-3"])
    monkeypatch.setattr(rounds, "new_round_id", lambda: next(legacy))
    player = new_player(client, "=cmd|' /C calc'!A0")
    api_ids = set()
    for _ in range(3):
        round_ = new_round(client, player)
        client.post(round_["answer_url"], headers=auth(player), json={"choice": round_["choices"][0]})
        api_ids.add(round_["round_id"])
    assert api_ids == {"-legacy-round-1", "-legacy-round-2", "-legacy-round-3"}
    as_csv = list(csv.DictReader(io.StringIO(client.get("/api/v1/export/answers.csv").text)))
    as_json = client.get("/api/v1/export/answers.json").json()
    as_jsonl = [json.loads(line) for line in client.get("/api/v1/export/answers.jsonl").text.splitlines()]
    for rows in (as_csv, as_json, as_jsonl):
        assert {row["round_id"] for row in rows} == api_ids
        assert {row["player_id"] for row in rows} == {player["player_id"]}
    assert {row["answer_id"] for row in as_csv} == {row["answer_id"] for row in as_json}
    assert {row["nickname"] for row in as_csv} == {"'=cmd|' /C calc'!A0"}
