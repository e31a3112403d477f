"""The spec says how to authenticate (HTTP Bearer security schemes for the player and the host token): a client
that sends the token the way the spec's scheme says, as Swagger UI's "Try it out" does, gets in, and the answers to
a missing or wrong token are those the API always gave."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app import messages
from tests.helpers import auth, new_event, new_player

BEARER = {"type": "http", "scheme": "bearer"}


def header_the_spec_asks_for(client: TestClient, path: str, method: str, token: str) -> dict[str, str]:
    """The header a client built from the spec sends with ``token``: the operation's security requirement names a
    scheme, and an HTTP scheme puts the token in Authorization after the scheme's name."""
    spec = client.get("/api/openapi.json").json()
    requirements = spec["paths"][path][method].get("security", [])
    assert requirements, f"{method.upper()} {path} declares no security requirement: a client cannot send a token"
    schemes = spec.get("components", {}).get("securitySchemes", {})
    (name,) = requirements[0]
    assert name in schemes, f"the spec names the scheme {name!r} but does not define it"
    scheme = schemes[name]
    assert scheme["type"] == "http", scheme
    return {"Authorization": f"{scheme['scheme'].capitalize()} {token}"}


def test_the_spec_declares_bearer_schemes_for_player_and_host_tokens(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {key: schemes["PlayerToken"][key] for key in BEARER} == BEARER
    assert {key: schemes["HostToken"][key] for key in BEARER} == BEARER
    paths = spec["paths"]
    assert paths["/api/v1/rounds"]["post"]["security"] == [{"PlayerToken": []}]
    assert paths["/api/v1/rounds/{round_id}/explain"]["get"]["security"] == [{"PlayerToken": []}]
    assert paths["/api/v1/events/{code}/{action}"]["post"]["security"] == [{"HostToken": []}]
    assert paths["/api/v1/events/{code}/players"]["get"]["security"] == [{"HostToken": []}]
    headers = [
        parameter["name"].lower()
        for path in paths.values()
        for operation in path.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header"
    ]
    assert "authorization" not in headers, "the token travels by the security scheme, not a header parameter"


def test_a_player_token_sent_as_the_spec_says_gets_in_and_bad_ones_answer_as_before(client: TestClient) -> None:
    missing = client.post("/api/v1/rounds")
    assert missing.status_code == 401 and missing.json()["detail"] == messages.PLAYER_REQUIRED
    for header in ("Basic abc", "Bearer", "Bearer    ", "Token abc"):
        response = client.post("/api/v1/rounds", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["detail"] == messages.TOKEN_INVALID, header
    wrong = client.post("/api/v1/rounds", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == messages.TOKEN_INVALID
    player = new_player(client)
    from_spec = header_the_spec_asks_for(client, "/api/v1/players/me/threshold", "get", player["token"])
    assert client.get("/api/v1/players/me/threshold", headers=from_spec).status_code == 200
    padded = client.get("/api/v1/players/me/threshold", headers={"Authorization": f"bearer   {player['token']} "})
    assert padded.status_code == 200, "the scheme's case and spaces around the token do not matter"


def test_a_host_token_sent_as_the_spec_says_gets_in_and_bad_ones_answer_as_before(client: TestClient) -> None:
    event = new_event(client)
    url = f"/api/v1/events/{event['code']}/players"
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        response = client.get(url, headers=headers)
        assert response.status_code == 403 and response.json()["detail"] == messages.HOST_TOKEN_REQUIRED, headers
    wrong = client.get(url, headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 403 and wrong.json()["detail"] == messages.HOST_TOKEN_INVALID
    assert client.get(url, headers=auth({"token": event["host_token"]})).status_code == 200
    from_spec = header_the_spec_asks_for(client, "/api/v1/events/{code}/players", "get", event["host_token"])
    assert client.get(url, headers=from_spec).status_code == 200
