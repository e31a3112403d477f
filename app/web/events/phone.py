"""A player's phone in an event: joining by code (typed or from the QR code) and the stage where they play."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.limits import fair_share_key
from app.db.tables import EventRecord, PlayerRecord, SharedRoundRecord
from app.deps import CookiePlayer, HubDep, HxRequest, ServiceDep, SessionDep, check_csrf
from app.errors import ArenaError
from app.game import disclosure, events, rounds, text, text_play
from app.ml.service.contracts import ModelService
from app.web.events.common import FormText, absolute, attempt, class_names, iso_moment
from app.web.routes import CsrfField, render, see_other
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(dependencies=SHOWN_SCORE)

PLAY_TEMPLATE = "pages/event_play.html"


# -- joining -----------------------------------------------------------------------------------------------------


@router.get("/join", name="join_page")
async def join_page(request: Request, player: CookiePlayer, code: str = Query("", max_length=20)) -> Response:
    context = {"player": player, "code": code.upper(), "nickname": "", "error": None, "event": None}
    return render(request, "pages/event_join.html", context)


@router.get("/join/{code}", name="join_event_page")
async def join_event_page(request: Request, code: str, session: SessionDep, player: CookiePlayer) -> Response:
    event: EventRecord | None
    error = None
    try:
        event = await events.event_by_code(session, code)
    except ArenaError as problem:
        event, error = None, problem.message
    if event is not None and player is not None and player.event_id == event.id and not player.removed:
        return see_other(absolute(request, "event_play", code=event.code))
    context = {"player": player, "code": code.upper()[:20], "nickname": "", "error": error, "event": event}
    return render(request, "pages/event_join.html", context, status_code=404 if error else 200)


@router.post("/join/event")
async def join_event(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    code: FormText = "",
    nickname: FormText = "",
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    event: EventRecord | None = None
    try:
        event = await events.event_by_code(session, code)
        player, _token = await events.join(session, event=event, nickname=nickname)
    except ArenaError as error:
        context = {"player": None, "code": code[:20], "nickname": nickname[:24], "error": error.message, "event": event}
        return render(request, "pages/event_join.html", context, status_code=error.status_code)
    hub.publish(event.code)
    request.session["player_id"] = player.id
    return see_other(absolute(request, "event_play", code=event.code))


# -- playing -----------------------------------------------------------------------------------------------------


def phone_status_key(event: EventRecord, shared: SharedRoundRecord | None) -> str:
    """What a phone's stage depends on besides the player's own rounds. The status stream sends it, and the stage
    carries the key it was drawn with, so a phone refreshes only when the key differs: a reconnect, or a stream that
    starts after the page was drawn, does not redraw the stage over a round the player is requesting."""
    status = events.status_of(event)
    return f"{status}:{event.phase}:{event.locked}:{shared.number if shared else 0}:{events.shared_is_open(shared)}"


async def stage_context(
    session: AsyncSession, event: EventRecord, player: PlayerRecord, service: ModelService
) -> dict[str, Any]:
    """What the player's phone shows now: the question, its reveal, or why there is nothing to do."""
    settings = events.event_settings(event)
    status = events.status_of(event)
    latest_shared = await events.current_shared_round(session, event)
    shared = latest_shared if settings.style == "together" else None
    record = await events.phone_round(session, event=event, player=player, shared=shared)
    answer = await rounds.round_answer(session, record.id) if record is not None else None
    names = class_names(service, event)
    if record is not None and not text.is_text(record):
        names = service.opponent_info(record.opponent).class_names
    hidden = await disclosure.why_truth_hidden(session, record, answer) if record is not None else None
    reveal: Any = None
    if record is not None and answer is not None and hidden is None:
        reveal = (
            text_play.build_text_reveal(record, answer, names)
            if text.is_text(record)
            else rounds.build_reveal(record, answer, names, rounds.attack_entry(service, record.attack))
        )
    played = await events.rounds_played(session, player)
    shared_open = events.shared_is_open(shared)
    return {
        "player": player,
        "status_key": phone_status_key(event, latest_shared),
        "score_shown": await disclosure.shown_score(session, player),
        "event": event,
        "settings": settings,
        "status": status,
        "round": record,
        "reveal": reveal,
        "locked_label": names[answer.choice] if answer is not None and reveal is None else None,
        "shared": shared,
        "shared_open": shared_open,
        "closes_at": iso_moment(shared.closes_at) if shared is not None else None,
        "choices": rounds.offered_choices(record, names) if record is not None else list(enumerate(names)),
        "played": played,
        "rounds_done": settings.rounds is not None and settings.style == "own_pace" and played >= settings.rounds,
    }


async def stage_reply(
    request: Request, session: AsyncSession, event: EventRecord, player: PlayerRecord, service: ModelService, hx: bool
) -> Response:
    """After a phone's request: htmx swaps in the redrawn stage; a plain form post goes back to the play page."""
    if not hx:
        return see_other(absolute(request, "event_play", code=event.code))
    context = await stage_context(session, event, player, service)
    context["flash"] = request.session.pop("flash", None)
    return render(request, PLAY_TEMPLATE, context, block="stage")


@router.get("/events/{code}/play", name="event_play")
async def event_play(
    request: Request, code: str, session: SessionDep, player: CookiePlayer, service: ServiceDep
) -> Response:
    event = await events.event_by_code(session, code)
    if player is None or player.event_id != event.id:
        return see_other(absolute(request, "join_event_page", code=event.code))
    player = events.player_in_event(player, event)
    context = await stage_context(session, event, player, service)
    context["flash"] = request.session.pop("flash", None)
    return render(request, PLAY_TEMPLATE, context)


@router.get("/events/{code}/play/stage", name="event_stage")
async def event_stage(
    request: Request, code: str, session: SessionDep, player: CookiePlayer, service: ServiceDep
) -> Response:
    event = await events.event_by_code(session, code)
    player = events.player_in_event(player, event)
    context = await stage_context(session, event, player, service)
    return render(request, PLAY_TEMPLATE, context, block="stage")


@router.post("/events/{code}/play/rounds")
async def event_new_round(
    request: Request,
    code: str,
    session: SessionDep,
    player: CookiePlayer,
    service: ServiceDep,
    hx: HxRequest,
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    event = await events.event_by_code(session, code)
    player = events.player_in_event(player, event)
    asked = events.ask_for_round(
        session, player=player, event=event, source=service, client_key=fair_share_key(request)
    )
    await attempt(request, asked)
    return await stage_reply(request, session, event, player, service, hx)


@router.post("/events/{code}/play/rounds/{round_id}/answer")
async def event_answer(
    request: Request,
    code: str,
    round_id: str,
    session: SessionDep,
    player: CookiePlayer,
    service: ServiceDep,
    hub: HubDep,
    hx: HxRequest,
    choice: FormText = "",
    shown_ms: Annotated[str, Form(max_length=20)] = "",
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    event = await events.event_by_code(session, code)
    player = events.player_in_event(player, event)
    try:
        measured = float(shown_ms) if shown_ms.strip() else None
    except ValueError:
        measured = None  # a garbled measurement is treated as none: the answer stays, flagged
    # committed when this returns: on disk before the reveal is sent and before the screens hear of it
    submitting = events.submit_answer(
        session, player=player, event=event, round_id=round_id, choice=choice, source=service, shown_ms=measured
    )
    if await attempt(request, submitting):
        hub.publish(event.code)
    return await stage_reply(request, session, event, player, service, hx)
