"""The error answers the spec documents are those the API gives (each a finding of the schemathesis run in
tests/api/test_schemathesis.py, pinned here on its own)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.helpers import new_event


def test_undeclared_methods_on_event_paths_answer_405(client: TestClient) -> None:
    code = new_event(client)["code"]
    for path in ("players", "stats"):
        assert client.post(f"/api/v1/events/{code}/{path}").status_code == 405, path
    assert client.post(f"/api/v1/events/{code}/fly").status_code == 404, "no such operation"


def test_both_kinds_of_422_and_the_400_are_documented(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    create = spec["paths"]["/api/v1/events"]["post"]["responses"]
    schemas = create["422"]["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/Problem"} in schemas
    assert {"$ref": "#/components/schemas/HTTPValidationError"} in schemas
    assert create["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    broken = client.post("/api/v1/events", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code in (400, 422) and broken.json()["detail"]
    domain = client.post("/api/v1/events", json={"name": "Workshop", "eps": 5.0})
    assert domain.status_code == 422 and isinstance(domain.json()["detail"], str)
    schema = client.post("/api/v1/events", json={"name": "Workshop", "rounds": "many"})
    assert schema.status_code == 422 and isinstance(schema.json()["detail"], list)


def test_stats_days_are_calendar_days_only(client: TestClient) -> None:
    assert client.get("/api/v1/stats?until=0").status_code == 422, "not 1970-01-01"
    assert client.get("/api/v1/stats?since=2026-12-01&until=2026-12-03").status_code == 200
