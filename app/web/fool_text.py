"""/fool/text: fool the machine yourself (app/game/fool_text). Every mutation is a plain form that works without
JavaScript (303 to a GET); with htmx the editor checks the edit live (debounced) and swaps only the verdict.

  GET  /fool/text                          the open round's editor, or a form to start one
  POST /fool/text/rounds                   start a round (a definition the opponent gets right)
  POST /fool/text/{edit_id}/check          the server's verdict on the edit (the live answer; nothing stored)
  POST /fool/text/{edit_id}/submit         re-checked, then won or lost (303 to the round)
  GET  /fool/text/{edit_id}                the round: its editor while open, its result after
  GET  /fool/text/validate                 a validation round: someone else's fooling text, or a form to start one
  POST /fool/text/validations              start one
  GET  /fool/text/validations/{id}         the question, or once answered its truth
  POST /fool/text/validations/{id}/answer  the one answer
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from app.api.limits import fair_share_key
from app.db.tables import PlayerRecord
from app.deps import CookiePlayer, HxRequest, ServiceDep, SessionDep, SettingsDep, check_csrf
from app.errors import ArenaError, Invalid, NotFound
from app.game.fool_text import edits, texts, validation
from app.game.fool_text.edits import EditCheck
from app.web.routes import render, see_other
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(include_in_schema=False, dependencies=SHOWN_SCORE)
EDITOR = "pages/fool_text.html"
VALIDATE = "pages/fool_text_validate.html"
CsrfField = Annotated[str | None, Form(alias="csrf_token")]
EditField = Annotated[str, Form(max_length=2000)]


def context(player: PlayerRecord, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "player": player,
        "record": None,
        "verdict": None,
        "edited": None,
        "error": None,
        "class_names": texts.CLASS_NAMES,
        "opponents": texts.OPPONENTS,
    }
    base.update(values)
    return base


def editor(request: Request, values: dict[str, Any], *, block: str | None = None, status_code: int = 200) -> Response:
    response = render(request, EDITOR, values, block=block, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/fool/text", name="fool_text")
async def fool_text_page(request: Request, player: CookiePlayer, session: SessionDep) -> Response:
    if player is None:
        return see_other("/")
    record = await edits.open_edit(session, player.id)
    if record is not None:
        return see_other(str(request.url_for("fool_text_round", edit_id=record.id)))
    return editor(request, context(player))


@router.post("/fool/text/rounds", name="fool_text_new")
async def fool_text_new(
    request: Request,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    settings: SettingsDep,
    opponent: Annotated[str | None, Form(max_length=60)] = None,
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    if player is None:
        return see_other("/")
    try:
        record = await edits.start_edit(
            session,
            service,
            player=player,
            opponent=opponent,
            budget=settings.fool_text_budget,
            client_key=fair_share_key(request),
        )
    except ArenaError as error:
        return editor(request, context(player, error=error.message), status_code=error.status_code)
    return see_other(str(request.url_for("fool_text_round", edit_id=record.id)))


@router.get("/fool/text/validate", name="fool_text_validate")
async def fool_text_validate(request: Request, player: CookiePlayer, session: SessionDep) -> Response:
    if player is None:
        return see_other("/")
    current = await validation.open_validation(session, player.id)
    if current is not None:
        return see_other(str(request.url_for("fool_text_validation", validation_id=current.id)))
    return render(request, VALIDATE, {"player": player, "view": None, "error": None})


@router.post("/fool/text/validations", name="fool_text_validation_new")
async def fool_text_validation_new(
    request: Request, player: CookiePlayer, session: SessionDep, csrf_token_field: CsrfField = None
) -> Response:
    check_csrf(request, csrf_token_field)
    if player is None:
        return see_other("/")
    try:
        shown = await validation.start_validation(session, player=player)
    except NotFound as error:
        return render(request, VALIDATE, {"player": player, "view": None, "error": error.message}, status_code=404)
    return see_other(str(request.url_for("fool_text_validation", validation_id=shown.record.id)))


@router.get("/fool/text/validations/{validation_id}", name="fool_text_validation")
async def fool_text_validation(
    request: Request, validation_id: str, player: CookiePlayer, session: SessionDep
) -> Response:
    if player is None:
        return see_other("/")
    shown = await validation.player_validation(session, player=player, validation_id=validation_id)
    response = render(request, VALIDATE, {"player": player, "view": shown, "error": None})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/fool/text/validations/{validation_id}/answer", name="fool_text_validation_answer")
async def fool_text_validation_answer(
    request: Request,
    validation_id: str,
    player: CookiePlayer,
    session: SessionDep,
    choice: Annotated[int, Form(ge=0, le=100)],
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    if player is None:
        return see_other("/")
    await validation.answer_validation(session, player=player, validation_id=validation_id, choice=choice)
    return see_other(str(request.url_for("fool_text_validation", validation_id=validation_id)))


@router.get("/fool/text/{edit_id}", name="fool_text_round")
async def fool_text_round(request: Request, edit_id: str, player: CookiePlayer, session: SessionDep) -> Response:
    if player is None:
        return see_other("/")
    record = await edits.player_edit(session, player=player, edit_id=edit_id)
    return editor(request, context(player, record=record, edited=record.edited or record.original))


async def judged(
    request: Request,
    session: SessionDep,
    service: ServiceDep,
    player: PlayerRecord | None,
    edit_id: str,
    edited: str,
    csrf: str | None,
    *,
    submit: bool,
) -> tuple[PlayerRecord, Any, EditCheck | None, ArenaError | None]:
    check_csrf(request, csrf)
    if player is None:
        raise NotFound(edits.EDIT_NOT_FOUND)
    work = edits.submit_edit if submit else edits.check_edit
    try:
        record, verdict = await work(
            session, service, player=player, edit_id=edit_id, edited=edited, client_key=fair_share_key(request)
        )
    except Invalid as error:
        record = await edits.player_edit(session, player=player, edit_id=edit_id)
        return player, record, None, error
    return player, record, verdict, None


@router.post("/fool/text/{edit_id}/check", name="fool_text_check")
async def fool_text_check(
    request: Request,
    edit_id: str,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    hx: HxRequest,
    edited: EditField = "",
    csrf_token_field: CsrfField = None,
) -> Response:
    who, record, verdict, error = await judged(
        request, session, service, player, edit_id, edited, csrf_token_field, submit=False
    )
    values = context(who, record=record, verdict=verdict, edited=edited, error=error.message if error else None)
    return editor(request, values, block="verdict" if hx else None)


@router.post("/fool/text/{edit_id}/submit", name="fool_text_submit")
async def fool_text_submit(
    request: Request,
    edit_id: str,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    edited: EditField = "",
    csrf_token_field: CsrfField = None,
) -> Response:
    who, record, verdict, error = await judged(
        request, session, service, player, edit_id, edited, csrf_token_field, submit=True
    )
    if error is not None:
        values = context(who, record=record, edited=edited, error=error.message)
        return editor(request, values, status_code=error.status_code)
    return see_other(str(request.url_for("fool_text_round", edit_id=edit_id)))
