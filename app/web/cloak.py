"""/cloak: upload your own photo, have it cloaked against the ImageNet classifier, download the result.

Works without JavaScript: the form posts normally, the server waits for the cloak and answers with the result
page. With htmx the same form posts in the background; the answer is a progress panel that follows the attack
step by step over server-sent events and is replaced by the result when it is done. Both paths run
:func:`app.api.cloak.start_cloak`, the code path of ``POST /api/v1/cloak``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from app.api.cloak import job_summary, read_cloak_form, service_of, start_cloak
from app.deps import check_csrf, csrf_token
from app.errors import ArenaError
from app.live import sse_message
from app.ml.cloak.service import STRENGTHS, CloakService
from app.web.routes import render
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(include_in_schema=False, dependencies=SHOWN_SCORE)

TEMPLATE = "pages/cloak.html"
POLL_S = 0.2
STREAM_LIMIT_S = 600.0


def base_context(request: Request, service: CloakService) -> dict[str, Any]:
    return {
        "request": request,
        "player": None,
        "csrf_token": csrf_token(request),
        "available": service.available,
        "class_names": service.class_names,
        "strengths": STRENGTHS,
        "ttl_minutes": service.result_ttl_s / 60,
        "max_mb": service.max_bytes / 1024 / 1024,
        "max_mp": service.max_pixels / 1e6,
        "max_side": service.max_side,
        "error": None,
        "result": None,
        "job": None,
        "deleted": False,
        "form": {"target": "", "strength": "medium", "eot": False, "method": "pgd", "goal": "family"},
    }


def page(
    request: Request,
    context: dict[str, Any],
    *,
    block: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    response = render(request, TEMPLATE, context, block=block, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


def error_headers(error: ArenaError) -> dict[str, str]:
    retry = getattr(error, "retry_after_s", None)
    return {"Retry-After": str(retry)} if retry is not None else {}


@router.get("/cloak", name="cloak_page")
async def cloak_page(request: Request, deleted: int = 0) -> Response:
    context = base_context(request, service_of(request))
    context["deleted"] = bool(deleted)
    return page(request, context)


@router.post("/cloak", name="cloak_submit")
async def cloak_submit(request: Request) -> Response:
    service = service_of(request)
    context = base_context(request, service)
    hx = request.headers.get("HX-Request") == "true"
    try:
        data, fields = await read_cloak_form(request, service)
        context["form"] = {
            "target": fields.get("target", "")[:80],
            "strength": fields.get("strength", "medium"),
            "eot": fields.get("eot") in ("1", "on", "true"),
            "method": fields.get("method", "pgd"),
            "goal": fields.get("goal", "family"),
        }
        check_csrf(request, fields.get("csrf_token"))
        job = await start_cloak(request, data, fields)
        del data
        if hx:
            context["job"] = job
            return page(request, context, block="result")
        await service.wait(job)
    except ArenaError as error:
        context["error"] = error.message
        return page(
            request,
            context,
            block="result" if hx else None,
            status_code=error.status_code,
            headers=error_headers(error),
        )
    context["result"] = job_summary(request, job, service)
    context["job"] = job
    return page(request, context)


@router.get("/cloak/r/{token}", name="cloak_result_page")
async def cloak_result_page(request: Request, token: str) -> Response:
    service = service_of(request)
    context = base_context(request, service)
    try:
        job = service.job(token)
        if job.status in ("queued", "running"):
            job = await service.wait(job)
        elif job.error is not None:
            raise job.error
    except ArenaError as error:
        context["error"] = error.message
        return page(request, context, status_code=error.status_code, headers=error_headers(error))
    context["job"] = job
    context["result"] = job_summary(request, job, service)
    return page(request, context)


@router.get("/cloak/r/{token}/{name}.png", name="cloak_file")
async def cloak_file(request: Request, token: str, name: str, download: int = 0) -> Response:
    path = service_of(request).file_path(token, f"{name}.png")
    headers = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="cloaked-{token[:8]}.png"'
    return FileResponse(path, media_type="image/png", headers=headers)


@router.post("/cloak/r/{token}/delete", name="cloak_delete")
async def cloak_delete(request: Request, token: str) -> Response:
    async with request.form(max_files=0, max_fields=4) as form:
        submitted = form.get("csrf_token")
    check_csrf(request, submitted if isinstance(submitted, str) else None)
    service_of(request).delete(token)
    return RedirectResponse(str(request.url_for("cloak_page")) + "?deleted=1", status_code=303)


@router.get("/cloak/jobs/{token}/events", name="cloak_events")
async def cloak_events(request: Request, token: str) -> StreamingResponse:
    """Progress of one cloak as server-sent events: ``progress`` fragments while it runs, then one ``done``
    fragment with the result (or the error), after which the stream ends."""
    service = service_of(request)
    job = service.job(token)
    env = request.app.state.templates.env

    def partial(name: str, context: dict[str, Any]) -> str:
        return str(env.get_template(f"partials/{name}.html").render(context))

    async def body() -> AsyncIterator[str]:
        started = time.monotonic()
        last = (-1, "")
        yield ": connected\n\n"
        while job.status in ("queued", "running") and time.monotonic() - started < STREAM_LIMIT_S:
            if await request.is_disconnected() or request.app.state.hub.closing:  # gone, or the server stops
                return
            state = (job.step, job.status)
            if state != last:
                last = state
                yield sse_message("progress", partial("cloak_progress", {"job": job}).strip())
            try:
                await asyncio.wait_for(job.finished.wait(), timeout=POLL_S)
            except TimeoutError:
                pass
        context = base_context(request, service)
        context["job"] = job
        if job.error is not None:
            context["error"] = job.error.message
        elif job.outcome is not None:
            context["result"] = job_summary(request, job, service)
        else:
            context["error"] = "The cloak is still running; reload the page to see it."
        yield sse_message("done", partial("cloak_outcome", context).strip())

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
