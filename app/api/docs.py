"""GET /api/docs: Swagger UI served from static/vendor, so it works offline and inside the page's CSP (FastAPI's
own page loads it from a CDN with an inline script, which the CSP blocks)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)


@router.get("/api/docs")
async def api_docs(request: Request) -> Response:
    context = {"openapi_url": request.app.openapi_url}
    response: Response = request.app.state.templates.TemplateResponse(request, "api_docs.html", context)
    return response
