"""Health for a load balancer and an orchestrator.

/livez: the process answers (an orchestrator restarts it otherwise), whatever the model service is doing: a web
process is not unhealthy while the model service restarts. /readyz: the database and the model service are
reachable (a load balancer sends it traffic). /healthz: the same verdict as /readyz; its details (the model
service's internal address and last error, the pool, the device) only for a request on this machine itself or one
with ARENA_ADMIN_TOKEN, since they help an attacker more than a load balancer."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.deps import AdminToken, SettingsDep
from app.web.session_cookie import arrived_on_loopback

# Not in the OpenAPI spec: these are for load balancers and orchestrators, not API clients.
router = APIRouter(tags=["health"], include_in_schema=False)


async def readiness(request: Request) -> tuple[bool, dict[str, Any], bool]:
    """(ready, the model service's own health, whether the database answers)."""
    model = await request.app.state.model_service.health()
    database_ok = await request.app.state.database.reachable()
    return bool(model.get("ok")) and database_ok, model, database_ok


def may_see_details(request: Request, admin_token: str, token: str | None) -> bool:
    if admin_token and token and secrets.compare_digest(token.encode(), admin_token.encode()):
        return True
    return arrived_on_loopback(request.scope)


@router.get("/livez")
async def livez() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    ready, _model, _database = await readiness(request)
    return JSONResponse({"status": "ready" if ready else "not ready"}, status_code=200 if ready else 503)


@router.get("/healthz")
async def healthz(request: Request, settings: SettingsDep, token: AdminToken) -> JSONResponse:
    ready, model, database_ok = await readiness(request)
    body: dict[str, Any] = {"status": "ok" if ready else "degraded"}
    if may_see_details(request, settings.admin_token.get_secret_value(), token):
        body["model"] = {**model, "ok": bool(model.get("ok"))}
        body["device"] = model.get("device")
        body["database"] = {"ok": database_ok, "backend": "sqlite" if settings.is_sqlite else "postgresql"}
    return JSONResponse(body, status_code=200 if ready else 503)
