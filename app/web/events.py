"""Workshop mode pages: host a session (/host, the host console), join by code or QR (/join), play in an event,
the big screen with its SSE stream, and the report with its charts. Routes are thin: the rules live in
app.game.events, the numbers in app.stats.events."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response, StreamingResponse
from jinja2_fragments import render_block
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import EventRecord, PlayerRecord, RoundRecord, SharedRoundRecord
from app.deps import CatalogDep, CookiePlayer, HubDep, HxRequest, ServiceDep, SessionDep, check_csrf
from app.errors import ArenaError, Forbidden, NotFound
from app.game import events, rounds
from app.game.difficulty import eps_as_grey_levels
from app.images import amplified_perturbation, from_png, to_png
from app.ml.service.contracts import ModelService
from app.stats import events as event_stats
from app.stats.leaderboard import leaderboard
from app.web import live
from app.web.routes import CsrfField, render, see_other

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=200)]
OptionalText = Annotated[str, Form(max_length=200)]
SCREEN_TEMPLATE = "pages/event_screen.html"
SCREEN_BLOCKS = ("status", "tally", "together", "eps", "board", "moments")


# -- helpers ----------------------------------------------------------------------------------------------------


def hosting(request: Request) -> dict[str, str]:
    value = request.session.get("hosting")
    return dict(value) if isinstance(value, dict) else {}


def remember_host(request: Request, code: str, token: str) -> None:
    tokens = hosting(request)
    tokens[code] = token
    request.session["hosting"] = dict(list(tokens.items())[-10:])  # the cookie stays small


def require_host(request: Request, event: EventRecord) -> str:
    """The host's browser holds the token in its signed session cookie (put there by /host or the secret link)."""
    token = hosting(request).get(event.code)
    if not token:
        raise Forbidden(messages.HOST_LINK_REQUIRED)
    events.check_host(event, token)
    return str(token)


def class_names(service: ModelService, event: EventRecord) -> tuple[str, ...]:
    return service.opponent_info(events.current_phase(event).opponent).class_names


def absolute(request: Request, name: str, **params: str) -> str:
    return str(request.url_for(name, **params))


def catalog_choices(catalog: events.Catalog) -> dict[str, Any]:
    return {
        "packs": sorted(set(catalog.opponents.values())),
        "opponents": sorted(catalog.opponents),
        "attacks": list(catalog.attacks),
    }


# -- hosting ------------------------------------------------------------------------------------------------------

DEFAULT_FORM = {
    "name": "",
    "pack": "fashion",
    "opponent": "fashion-cnn",
    "attack": "pgd",
    "opponent2": "",
    "attack2": "",
    "eps_min": "4",
    "eps_max": "12",
    "style": "own_pace",
    "rounds": "10",
    "time_minutes": "",
    "round_seconds": "20",
    "conditions": "",
    "flash_ms": "",
}


@router.get("/host")
async def host_form(request: Request, player: CookiePlayer, catalog: CatalogDep) -> Response:
    context = {"player": player, "form": DEFAULT_FORM, "error": None, **catalog_choices(catalog)}
    return render(request, "pages/host_new.html", context)


def _grey_to_eps(raw: str) -> float | str:
    try:
        return float(raw) / 255.0
    except ValueError:
        return raw


@router.post("/host")
async def host_create(
    request: Request,
    session: SessionDep,
    player: CookiePlayer,
    catalog: CatalogDep,
    name: FormText = "",
    pack: OptionalText = "",
    opponent: FormText = "",
    attack: FormText = "",
    opponent2: OptionalText = "",
    attack2: OptionalText = "",
    eps_min: FormText = "",
    eps_max: FormText = "",
    style: FormText = "own_pace",
    rounds_limit: Annotated[str, Form(alias="rounds", max_length=10)] = "",
    time_minutes: OptionalText = "",
    round_seconds: FormText = "20",
    conditions: OptionalText = "",
    flash_ms: OptionalText = "",
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    form = {
        "name": name,
        "pack": pack,
        "opponent": opponent,
        "attack": attack,
        "opponent2": opponent2,
        "attack2": attack2,
        "eps_min": eps_min,
        "eps_max": eps_max,
        "style": style,
        "rounds": rounds_limit,
        "time_minutes": time_minutes,
        "round_seconds": round_seconds,
        "conditions": conditions,
        "flash_ms": flash_ms,
    }
    phases = [{"opponent": opponent, "attack": attack}]
    if opponent2 or attack2:
        phases.append({"opponent": opponent2 or opponent, "attack": attack2 or attack})
    time_limit: object = ""
    if time_minutes.strip():
        try:
            time_limit = int(float(time_minutes) * 60)
        except ValueError:
            time_limit = time_minutes
    raw = {
        "name": name,
        "pack": pack or None,
        "phases": phases,
        "eps_min": _grey_to_eps(eps_min),
        "eps_max": _grey_to_eps(eps_max or eps_min),
        "style": style,
        "rounds": rounds_limit.strip(),
        "time_limit_s": time_limit,
        "round_seconds": round_seconds,
        "conditions": conditions.strip() or None,
        "flash_ms": flash_ms.strip() or None,
    }
    try:
        event_name, pack, settings = events.validate_settings(raw, catalog=catalog)
    except ArenaError as error:
        context = {"player": player, "form": form, "error": error.message, **catalog_choices(catalog)}
        return render(request, "pages/host_new.html", context, status_code=error.status_code)
    event, token = await events.create_event(session, name=event_name, pack=pack, settings=settings)
    await session.commit()
    remember_host(request, event.code, token)
    request.session["flash"] = "Event created. Keep the secret host link to run it from another device."
    return see_other(absolute(request, "host_console", code=event.code))


async def console_context(
    request: Request, session: AsyncSession, event: EventRecord, token: str, player: Any
) -> dict[str, Any]:
    settings = events.event_settings(event)
    shared = await events.current_shared_round(session, event)
    return {
        "player": player,
        "event": event,
        "settings": settings,
        "status": events.status_of(event),
        "seconds_left": events.seconds_left(event),
        "phase": events.current_phase(event),
        "players": await events.event_players(session, event),
        "shared": shared,
        "shared_open": events.shared_is_open(shared),
        "shared_closes_at": events.aware(shared.closes_at).isoformat() if shared is not None else None,  # type: ignore[union-attr]
        "join_url": absolute(request, "join_event_page", code=event.code),
        "host_link": absolute(request, "host_console", code=event.code) + f"?key={token}",
        "flash": request.session.pop("flash", None),
        "eps_levels": [eps_as_grey_levels(e) for e in settings.eps_levels()],
    }


@router.get("/events/{code}/host", name="host_console")
async def host_console(
    request: Request, code: str, session: SessionDep, player: CookiePlayer, key: str | None = Query(None)
) -> Response:
    event = await events.event_by_code(session, code)
    if key is not None:  # the secret host link: check it, keep it in the cookie, drop it from the address bar
        events.check_host(event, key)
        remember_host(request, event.code, key)
        return see_other(absolute(request, "host_console", code=event.code))
    token = require_host(request, event)
    return render(request, "pages/host_console.html", await console_context(request, session, event, token, player))


@router.post("/events/{code}/host/{action}")
async def host_control(
    request: Request,
    code: str,
    action: str,
    session: SessionDep,
    service: ServiceDep,
    hub: HubDep,
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    event = await events.event_by_code(session, code, for_update=True)
    require_host(request, event)
    if action not in events.HOST_ACTIONS:
        raise NotFound(messages.EVENT_ACTION_UNKNOWN)
    try:
        await events.host_action(session, event=event, action=action, source=service)
    except ArenaError as error:
        if error.status_code != 409:
            raise
        await session.rollback()
        request.session["flash"] = error.message
        return see_other(absolute(request, "host_console", code=code))
    await session.commit()
    hub.publish(event.code, status=True)
    return see_other(absolute(request, "host_console", code=event.code))


@router.post("/events/{code}/host/players/{player_id}/remove")
async def host_remove_player(
    request: Request, code: str, player_id: str, session: SessionDep, hub: HubDep, csrf_token_field: CsrfField = None
) -> Response:
    check_csrf(request, csrf_token_field)
    event = await events.event_by_code(session, code)
    require_host(request, event)
    removed = await events.remove_player(session, event=event, player_id=player_id)
    await session.commit()
    hub.publish(event.code, status=True)  # the removed phone finds out
    request.session["flash"] = f"Removed {removed.nickname}."
    return see_other(absolute(request, "host_console", code=event.code))


@router.get("/events/{code}/qr.svg", name="event_qr")
async def event_qr(request: Request, code: str, session: SessionDep) -> Response:
    """The join URL as a QR code, drawn here (segno), never fetched from a third party."""
    event = await events.event_by_code(session, code)
    qr = segno.make(absolute(request, "join_event_page", code=event.code), error="m")
    buffer = io.BytesIO()  # a standalone SVG document (with its xmlns), so that <img> can show it
    qr.save(buffer, kind="svg", scale=8, dark="#000", light="#fff", border=2, title=f"Join {event.code}")
    return Response(buffer.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=3600"})


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
    await session.commit()
    hub.publish(event.code)
    request.session["player_id"] = player.id
    return see_other(absolute(request, "event_play", code=event.code))


# -- playing in an event -----------------------------------------------------------------------------------------


async def event_player(session: AsyncSession, player: PlayerRecord | None, event: EventRecord) -> PlayerRecord:
    if player is None or player.event_id != event.id:
        raise Forbidden(messages.PLAYER_NOT_IN_EVENT_WEB)
    events.check_player_active(player)
    return player


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
    record: RoundRecord | None = None
    latest_shared = await events.current_shared_round(session, event)
    shared = latest_shared if settings.style == "together" else None
    if settings.style == "together":
        if shared is not None and events.shared_is_open(shared) and status == "running":
            record = await events.copy_for_player(session, shared=shared, player=player)
            await session.commit()
        elif shared is not None:
            record = await session.scalar(
                select(RoundRecord).where(RoundRecord.player_id == player.id, RoundRecord.shared_round_id == shared.id)
            )
    else:
        record = await events.open_round(session, player)
        if record is None:
            record = await latest_round(session, player)
    answer = await rounds.round_answer(session, record.id) if record is not None else None
    names = service.opponent_info(record.opponent).class_names if record is not None else class_names(service, event)
    reveal = (
        rounds.build_reveal(record, answer, names, rounds.attack_entry(service, record.attack))
        if record is not None and answer is not None
        else None
    )
    played = int(
        await session.scalar(select(func.count(RoundRecord.id)).where(RoundRecord.player_id == player.id)) or 0
    )
    shared_open = events.shared_is_open(shared)
    # Points for an answer still counting down stay out of the shown score: they would tell the player (and,
    # through them, the room) whether the answer was right before the reveal.
    pending = (
        answer.points if answer is not None and record is not None and record.shared_round_id and shared_open else 0
    )
    return {
        "player": player,
        "status_key": phone_status_key(event, latest_shared),
        "score_shown": player.score - pending,
        "event": event,
        "settings": settings,
        "status": status,
        "round": record,
        "reveal": reveal,
        "shared": shared,
        "shared_open": shared_open,
        "closes_at": events.aware(shared.closes_at).isoformat() if shared is not None else None,  # type: ignore[union-attr]
        "choices": rounds.offered_choices(record, names) if record is not None else list(enumerate(names)),
        "played": played,
        "rounds_done": settings.rounds is not None
        and settings.style == "own_pace"
        and (played or 0) >= settings.rounds,
    }


async def latest_round(session: AsyncSession, player: PlayerRecord) -> RoundRecord | None:
    return await session.scalar(
        select(RoundRecord).where(RoundRecord.player_id == player.id).order_by(RoundRecord.created_at.desc()).limit(1)
    )


@router.get("/events/{code}/play", name="event_play")
async def event_play(
    request: Request, code: str, session: SessionDep, player: CookiePlayer, service: ServiceDep
) -> Response:
    event = await events.event_by_code(session, code)
    if player is None or player.event_id != event.id:
        return see_other(absolute(request, "join_event_page", code=event.code))
    player = await event_player(session, player, event)
    context = await stage_context(session, event, player, service)
    context["flash"] = request.session.pop("flash", None)
    return render(request, "pages/event_play.html", context)


@router.get("/events/{code}/play/stage", name="event_stage")
async def event_stage(
    request: Request, code: str, session: SessionDep, player: CookiePlayer, service: ServiceDep
) -> Response:
    event = await events.event_by_code(session, code)
    player = await event_player(session, player, event)
    context = await stage_context(session, event, player, service)
    return render(request, "pages/event_play.html", context, block="stage")


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
    player = await event_player(session, player, event)
    try:
        await events.next_round(session, player=player, event=event, source=service, release_connection=True)
    except ArenaError as error:
        if error.status_code != 409:
            raise
        await session.rollback()
        await session.refresh(event)  # a rollback expires everything; the page still shows them
        await session.refresh(player)
        request.session["flash"] = error.message
    else:
        await session.commit()
    if hx:
        context = await stage_context(session, event, player, service)
        context["flash"] = request.session.pop("flash", None)
        return render(request, "pages/event_play.html", context, block="stage")
    return see_other(absolute(request, "event_play", code=event.code))


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
    player = await event_player(session, player, event)
    try:
        measured = float(shown_ms) if shown_ms.strip() else None
    except ValueError:
        measured = None  # a garbled measurement is treated as none: the answer stays, flagged
    try:
        await events.answer_round(
            session, player=player, round_id=round_id, choice=choice, source=service, shown_ms=measured
        )
    except ArenaError as error:
        if error.status_code != 409:
            raise
        await session.rollback()
        await session.refresh(event)  # a rollback expires everything; the page still shows them
        await session.refresh(player)
        request.session["flash"] = error.message
    else:
        await session.commit()  # on disk before the reveal is sent and before the screens hear of it
        hub.publish(event.code)
    if hx:
        context = await stage_context(session, event, player, service)
        context["flash"] = request.session.pop("flash", None)
        return render(request, "pages/event_play.html", context, block="stage")
    return see_other(absolute(request, "event_play", code=event.code))


# -- the big screen ----------------------------------------------------------------------------------------------


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
        "ends_at": events.aware(event.ends_at).isoformat() if event.ends_at is not None else None,  # type: ignore[union-attr]
        "phase": events.current_phase(event),
        "summary": summary,
        "by_eps": await event_stats.accuracy_by_eps(session, event.id),
        "board": await leaderboard(session, limit=10, event_id=event.id),
        "moments": await event_stats.beat_moments(session, event.id, names),
        "shared": shared,
        "shared_open": events.shared_is_open(shared),
        "closes_at": events.aware(shared.closes_at).isoformat() if shared is not None else None,  # type: ignore[union-attr]
        "votes": votes,
        "class_names": names,
        "join_url_text": None,
    }


def screen_wake_at(context: dict[str, Any]) -> datetime | None:
    """When the screen changes by itself: a together countdown or the time limit running out."""
    moments = []
    shared = context["shared"]
    if shared is not None and context["shared_open"]:
        moments.append(events.aware(shared.closes_at))
    event = context["event"]
    if context["status"] == "running" and event.ends_at is not None:
        moments.append(events.aware(event.ends_at))
    found = [m for m in moments if m is not None and m > datetime.now(UTC)]
    return min(found) if found else None


@router.get("/events/{code}/screen", name="event_screen")
async def event_screen(
    request: Request, code: str, session: SessionDep, player: CookiePlayer, service: ServiceDep
) -> Response:
    event = await events.event_by_code(session, code)
    context = await screen_context(session, event, service)
    context["player"] = None
    context["join_url"] = absolute(request, "join_event_page", code=event.code)
    context["join_base"] = absolute(request, "join_page")
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
            fresh = await snap_session.get(EventRecord, event_id)
            if fresh is None:
                raise NotFound(messages.EVENT_NOT_FOUND)
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
            fresh = await snap_session.get(EventRecord, event_id)
            if fresh is None:
                raise NotFound(messages.EVENT_NOT_FOUND)
            shared = await events.current_shared_round(snap_session, fresh)
            status = events.status_of(fresh)
            is_open = events.shared_is_open(shared)
            key = phone_status_key(fresh, shared)
            wake = [events.aware(shared.closes_at)] if shared is not None and is_open else []
            if status == "running" and fresh.ends_at is not None:
                wake.append(events.aware(fresh.ends_at))
        found = [w for w in wake if w is not None]
        return live.Snapshot(key=key, events=(("status", key),), wake_at=min(found) if found else None)

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
    shared = await session.scalar(
        select(SharedRoundRecord).where(SharedRoundRecord.event_id == event.id, SharedRoundRecord.number == number)
    )
    if shared is None or kind not in ("adversarial", "original", "perturbation"):
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


# -- the report ----------------------------------------------------------------------------------------------------


@router.get("/events/{code}/report", name="event_report")
async def event_report(
    request: Request, code: str, session: SessionDep, player: CookiePlayer, service: ServiceDep
) -> Response:
    event = await events.event_by_code(session, code)
    names = class_names(service, event)
    confusions = await event_stats.confusions(session, event.id)
    votes = await event_stats.shared_votes(session, event.id, len(names))
    context = {
        "player": player,
        "event": event,
        "settings": events.event_settings(event),
        "status": events.status_of(event),
        "summary": await event_stats.summary(session, event.id),
        "by_eps": await event_stats.accuracy_by_eps(session, event.id),
        "board": await leaderboard(session, limit=500, event_id=event.id),
        "human_confusions": confusions.top("human"),
        "model_confusions": confusions.top("model"),
        "class_names": names,
        "votes": [v for v in votes if not events.open_until(v.closes_at)],
        "beat_rounds": [v for v in votes if v.room_beat_machine and not events.open_until(v.closes_at)],
        "moments": await event_stats.beat_moments(session, event.id, names, limit=20),
        "is_host": event.code in hosting(request),
    }
    return render(request, "pages/event_report.html", context)


CHARTS = ("accuracy-by-eps", "confusions")


@router.get("/events/{code}/charts/{chart}.{fmt}", name="event_chart")
async def event_chart(code: str, chart: str, fmt: str, session: SessionDep, service: ServiceDep) -> Response:
    from app.stats.plots import events as plots  # matplotlib loads on the first chart, not at start-up

    if chart not in CHARTS or fmt not in plots.CHART_FORMATS:
        raise NotFound(messages.CHART_UNKNOWN)
    event = await events.event_by_code(session, code)
    if chart == "accuracy-by-eps":
        rows = await event_stats.accuracy_by_eps(session, event.id)
        data = await asyncio.to_thread(plots.accuracy_by_eps_chart, rows, fmt, title=f"{event.name}: people vs model")
    else:
        confusions = await event_stats.confusions(session, event.id)
        data = await asyncio.to_thread(plots.confusion_chart, confusions, class_names(service, event), fmt)
    filename = f"event-{event.code}-{chart}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    return Response(data, media_type=plots.CHART_FORMATS[fmt], headers=headers)
