"""The big screen of an event, its live stream (SSE, shared with the phones' status stream) and the room's
together images."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from jinja2_fragments import render_block
from sqlalchemy.ext.asyncio import AsyncSession

from app import live, messages
from app.db.tables import EventRecord
from app.deps import CookiePlayer, HubDep, ServiceDep, SessionDep
from app.errors import NotFound
from app.game import events
from app.images import amplified_perturbation, from_png, to_png
from app.ml.service.contracts import ModelService
from app.stats import events as event_stats
from app.stats.leaderboard import leaderboard
from app.web.events.common import class_names, iso_moment
from app.web.events.phone import phone_status_key
from app.web.room import join_link
from app.web.routes import render

router = APIRouter()

SCREEN_TEMPLATE = "pages/event_screen.html"
SCREEN_BLOCKS = ("status", "tally", "together", "eps", "board", "moments")
SHARED_IMAGE_KINDS = ("adversarial", "original", "perturbation")


async def screen_context(session: AsyncSession, event: EventRecord, service: ModelService) -> dict[str, Any]:
    names = class_names(service, event)
    settings = events.event_settings(event)
    summary = await event_stats.summary(session, event.id)
    shared = await events.current_shared_round(session, event)
    votes = None
    if shared is not None:
        found = await event_stats.shared_votes(session, event.id, len(names), only=shared.id)
        votes = found[0] if found else None
    return {
        "event": event,
        "settings": settings,
        "status": events.status_of(event),
        "seconds_left": events.seconds_left(event),
        "ends_at": iso_moment(event.ends_at),
        "phase": events.current_phase(event),
        "summary": summary,
        "by_eps": await event_stats.accuracy_by_eps(session, event.id),
        "board": await leaderboard(session, limit=10, event_id=event.id),
        "moments": await event_stats.beat_moments(session, event.id, names),
        "shared": shared,
        "shared_open": events.shared_is_open(shared),
        "closes_at": iso_moment(shared.closes_at) if shared is not None else None,
        "votes": votes,
        "class_names": names,
        "join_url_text": None,
    }


def screen_wake_at(context: dict[str, Any]) -> datetime | None:
    """When the screen changes by itself: a together countdown or the time limit running out."""
    moments = events.unattended_changes(
        context["event"], context["shared"], shared_open=context["shared_open"], running=context["status"] == "running"
    )
    found = [moment for moment in moments if moment > datetime.now(UTC)]
    return min(found) if found else None


@router.get("/events/{code}/screen", name="event_screen")
async def event_screen(
    request: Request, code: str, session: SessionDep, player: CookiePlayer, service: ServiceDep
) -> Response:
    event = await events.event_by_code(session, code)
    context = await screen_context(session, event, service)
    context["player"] = None
    context["join_url"] = join_link(request, "join_event_page", code=event.code)
    context["join_base"] = join_link(request, "join_page")
    return render(request, SCREEN_TEMPLATE, context)


@router.get("/events/{code}/stream", name="event_stream")
async def event_stream(
    request: Request,
    code: str,
    session: SessionDep,
    service: ServiceDep,
    hub: HubDep,
    role: str = Query("screen", pattern="^(screen|player)$"),
) -> StreamingResponse:
    """Server-sent events for the big screen (role=screen: fragments named after the panels they replace) or a
    phone (role=player: a `status` event whenever the host changes something). Never holds a DB session while
    it waits: each snapshot opens and closes its own."""
    event = await events.event_by_code(session, code)
    event_id, event_code = event.id, event.code
    await session.close()
    sessionmaker = request.app.state.database.sessionmaker
    templates = request.app.state.templates

    async def build_screen() -> live.Snapshot:
        async with sessionmaker() as snap_session:
            fresh = await events.event_by_id(snap_session, event_id)
            context = await screen_context(snap_session, fresh, service)
        context.update(request=request, player=None, fragment=True, csrf_token="")
        blocks = [b for b in SCREEN_BLOCKS if b != "together" or context["settings"].style == "together"]
        rendered = tuple(
            (block, "".join(render_block(templates.env, SCREEN_TEMPLATE, block, context)).strip()) for block in blocks
        )
        key = str(hash(rendered))
        return live.Snapshot(key=key, events=rendered, wake_at=screen_wake_at(context))

    async def build_status() -> live.Snapshot:
        async with sessionmaker() as snap_session:
            fresh = await events.event_by_id(snap_session, event_id)
            shared = await events.current_shared_round(snap_session, fresh)
            running = events.status_of(fresh) == "running"
            key = phone_status_key(fresh, shared)
            wake = events.unattended_changes(fresh, shared, shared_open=events.shared_is_open(shared), running=running)
        return live.Snapshot(key=key, events=(("status", key),), wake_at=min(wake) if wake else None)

    body = live.stream(
        hub,
        event_code,
        kind=role,
        build=build_screen if role == "screen" else build_status,
        is_disconnected=request.is_disconnected,
        max_duration_s=live.MAX_STREAM_S,
    )
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


@router.get("/events/{code}/shared/{number}/{kind}.png", name="shared_image")
async def shared_image(code: str, number: int, kind: str, session: SessionDep) -> Response:
    """A together image for the big screen: the shown image while it is open, the original and the amplified
    change once its countdown is over."""
    event = await events.event_by_code(session, code)
    shared = await events.shared_round_by_number(session, event, number)
    if shared is None or kind not in SHARED_IMAGE_KINDS:
        raise NotFound(messages.ROUND_NOT_FOUND)
    if kind != "adversarial" and events.shared_is_open(shared):
        raise NotFound(messages.REVEAL_NOT_READY)
    if kind == "adversarial":
        data = shared.adversarial_png
    elif kind == "original":
        data = shared.clean_png
    else:
        data = to_png(amplified_perturbation(from_png(shared.clean_png), from_png(shared.adversarial_png)))
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
