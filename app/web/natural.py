"""/natural: rounds on natural photos (app/ml/packs/natural.py) against EfficientNet-Lite0, without JavaScript.

Start a round (POST, 303 to the round), pick one of four classes (POST, 303 to the reveal). Rounds live in the
cloak service's memory for a few minutes; they are not written to the game database or the leaderboards. The
page never carries the answer: the original photo and the difference are served only after the answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.api.cloak import service_of, upload_queue
from app.deps import check_csrf, csrf_token
from app.errors import ArenaError, NotFound
from app.ml.cloak.uploads import to_png
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(include_in_schema=False, dependencies=SHOWN_SCORE)
TEMPLATE = "pages/natural.html"


def page(request: Request, context: dict[str, Any], status_code: int = 200) -> Response:
    base = {"request": request, "player": None, "csrf_token": csrf_token(request), "error": None, "round": None}
    base.update(context)
    response: Response = request.app.state.templates.TemplateResponse(request, TEMPLATE, base, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


async def form_field(request: Request, name: str) -> str | None:
    async with request.form(max_files=0, max_fields=4) as form:
        value = form.get(name)
        token = form.get("csrf_token")
    check_csrf(request, token if isinstance(token, str) else None)
    return value if isinstance(value, str) else None


@router.get("/natural", name="natural_page")
async def natural_page(request: Request) -> Response:
    return page(request, {"available": service_of(request).available})


@router.post("/natural/rounds", name="natural_new")
async def natural_new(request: Request) -> Response:
    try:
        await form_field(request, "csrf_token")
        async with upload_queue(request).place():
            token = await service_of(request).new_natural_round()
    except ArenaError as error:
        response = page(request, {"available": True, "error": error.message}, status_code=error.status_code)
        if getattr(error, "retry_after_s", None) is not None:
            response.headers["Retry-After"] = str(error.retry_after_s)  # type: ignore[attr-defined]
        return response
    return RedirectResponse(str(request.url_for("natural_round", token=token)), status_code=303)


@router.get("/natural/r/{token}", name="natural_round")
async def natural_round(request: Request, token: str) -> Response:
    try:
        round_, answer = service_of(request).natural_round(token)
    except ArenaError as error:
        return page(request, {"available": True, "error": error.message}, status_code=error.status_code)
    return page(request, {"available": True, "round": round_, "answer": answer, "token": token})


@router.post("/natural/r/{token}/answer", name="natural_answer")
async def natural_answer(request: Request, token: str) -> Response:
    try:
        choice = await form_field(request, "choice")
        service_of(request).answer_natural_round(token, choice or "")
    except ArenaError as error:
        return page(request, {"available": True, "error": error.message}, status_code=error.status_code)
    return RedirectResponse(str(request.url_for("natural_round", token=token)), status_code=303)


@router.get("/natural/r/{token}/{kind}.png", name="natural_image")
async def natural_image(request: Request, token: str, kind: str) -> Response:
    round_, answer = service_of(request).natural_round(token)
    if kind == "shown":
        pixels = round_.shown
    elif kind in ("original", "difference") and answer is not None:
        pixels = round_.original if kind == "original" else round_.difference
    else:
        raise NotFound("No such image (the original is shown after you answer).")
    return Response(to_png(pixels), media_type="image/png", headers={"Cache-Control": "private, no-store"})
