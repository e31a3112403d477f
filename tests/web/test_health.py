"""Health for a load balancer and an orchestrator: /livez (the process answers), /readyz (the database and the
model service are reachable), /healthz (a status only; the details for the machine itself or the admin token)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import ADMIN

MODEL_DOWN = {
    "ok": False,
    "state": "down",
    "url": "http://modelsvc.internal:8100",
    "last_error": "ConnectError: [Errno 111] Connection refused",
}


@pytest.fixture
def model_down(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    async def health() -> dict[str, Any]:
        return dict(MODEL_DOWN)

    monkeypatch.setattr(client.app.state.model_service, "health", health)
    return client


def test_livez_and_readyz_say_ok_when_all_is_well(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_the_web_process_stays_live_while_the_model_service_restarts(model_down: TestClient) -> None:
    assert model_down.get("/livez").status_code == 200, "an orchestrator must not restart the web process"
    not_ready = model_down.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.json() == {"status": "not ready"}


def test_healthz_publishes_no_internal_address_and_no_exception_text(model_down: TestClient) -> None:
    public = model_down.get("/healthz")
    assert public.status_code == 503 and public.json() == {"status": "degraded"}
    assert "modelsvc" not in public.text and "Errno" not in public.text
    wrong = model_down.get("/healthz", headers={"Authorization": "Bearer guess"})
    assert wrong.json() == {"status": "degraded"}


def test_healthz_details_come_with_the_admin_token(model_down: TestClient) -> None:
    detailed = model_down.get("/healthz", headers=ADMIN).json()
    assert detailed["model"]["url"] == MODEL_DOWN["url"] and detailed["database"]["ok"] is True
