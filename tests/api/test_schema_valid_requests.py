"""Issue 16, "the API's contract is not what it does": schemathesis found requests that /api/openapi.json calls valid
refused with a 422, on POST /api/v1/players (nicknames the spec allowed and the server's rule refuses) and POST
/api/v1/events (every event given only some of its optional settings). A fixed list of such requests, checked
against the app's own spec with a JSON Schema validator: what the spec allows is accepted, and what the server
refuses the spec does not allow. tests/api/test_schemathesis.py runs the fuzzer itself over every operation."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

# The nickname rule is 1 to 24 printable characters once the ends' spaces are dropped (app.game.players).
NICKNAMES_REFUSED = ["", "   ", "x" * 25, "x" * 200, "tab\there", "bell\x07"]
NICKNAMES_ACCEPTED = ["x", "x" * 24, "Ada Lovelace"]
# Events with a name and any of the optional settings left out, null, or empty (the defaults): the name-only
# event and bodies like those schemathesis generated, which were all refused for the budget.
NULL_SETTINGS = dict.fromkeys(
    ("pack", "phases", "opponent", "attack", "eps", "eps_min", "eps_max", "rounds", "time_limit_s", "flash_ms"), None
)
EVENTS_ACCEPTED: list[dict[str, Any]] = [
    {"name": "Workshop"},
    {"name": "Workshop", **NULL_SETTINGS, "guess_share": None, "conditions": None},
    {"name": "Workshop", "pack": "", "opponent": "", "attack": "", "conditions": ""},
    {"name": "Workshop", "style": "together", "round_seconds": 20},
    {"name": "Workshop", "style": "own_pace", "guess_share": 0, "conditions": {}},
    {"name": "Workshop", "flash_ms": 20},
    {"name": "x" * 80},
]


def request_body_validator(client: TestClient, path: str) -> Draft202012Validator:
    """The JSON Schema the spec gives for ``path``'s POST body, its references resolved in the spec's components."""
    spec = client.get("/api/openapi.json").json()
    body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return Draft202012Validator({**body, "components": spec["components"]})


def test_nicknames_the_spec_allows_are_accepted_and_refused_ones_are_outside_it(client: TestClient) -> None:
    valid = request_body_validator(client, "/api/v1/players")
    for nickname in NICKNAMES_ACCEPTED:
        body = {"nickname": nickname}
        assert valid.is_valid(body), nickname
        assert client.post("/api/v1/players", json=body).status_code == 201, nickname
    refused_yet_valid = []
    for nickname in NICKNAMES_REFUSED:
        body = {"nickname": nickname}
        assert client.post("/api/v1/players", json=body).status_code == 422, nickname
        if valid.is_valid(body):
            refused_yet_valid.append(nickname)
    assert refused_yet_valid == [], "the spec allows these nicknames, the server refuses them"


def test_events_the_spec_allows_with_defaults_left_out_are_created(client: TestClient) -> None:
    valid = request_body_validator(client, "/api/v1/events")
    refused = []
    for body in EVENTS_ACCEPTED:
        assert valid.is_valid(body), body
        response = client.post("/api/v1/events", json=body)
        if response.status_code != 201:
            refused.append((body, response.status_code, response.json()["detail"]))
    assert refused == [], "the spec allows these events, the server refuses them"


EVENTS_REFUSED: list[dict[str, Any]] = [
    {"name": ""},
    {"name": "   "},
    {"name": "x" * 81},
    {"name": "line\nbreak"},
    {"name": "Workshop", "phases": []},
]


def test_events_the_server_refuses_for_their_name_or_phases_are_outside_the_spec(client: TestClient) -> None:
    valid = request_body_validator(client, "/api/v1/events")
    refused_yet_valid = []
    for body in EVENTS_REFUSED:
        assert client.post("/api/v1/events", json=body).status_code == 422, body
        if valid.is_valid(body):
            refused_yet_valid.append(body)
    assert refused_yet_valid == [], "the spec allows these events, the server refuses them"
