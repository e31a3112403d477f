"""Hosting an event: the form that creates it, the host console and its controls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import EventRecord
from app.deps import CatalogDep, CookiePlayer, HubDep, ServiceDep, SessionDep, check_csrf
from app.errors import ArenaError
from app.game import disclosure, events
from app.game.difficulty import eps_as_grey_levels
from app.web.events.common import FormText, absolute, attempt, hosting, iso_moment, remember_host, require_host
from app.web.room import is_loopback_url, join_link
from app.web.routes import CsrfField, render, see_other
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(dependencies=SHOWN_SCORE)

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
    "expected_players": "",
    "mode": "images",
    "image_mode": "fresh",
}


def catalog_choices(catalog: events.Catalog) -> dict[str, Any]:
    return {
        "packs": sorted(set(catalog.opponents.values())),
        "opponents": sorted(catalog.opponents),
        "attacks": list(catalog.attacks),
    }


def grey_to_eps(raw: str) -> float | str:
    """The form asks for grey levels; the settings take eps. Anything else goes on for the settings to refuse."""
    try:
        return float(raw) / 255.0
    except ValueError:
        return raw


def minutes_to_seconds(raw: str) -> object:
    if not raw.strip():
        return ""
    try:
        return int(float(raw) * 60)
    except (ValueError, OverflowError):  # OverflowError: "inf" or "1e400" minutes, which int() cannot hold
        return raw


def settings_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The host form's fields as the settings' raw mapping (a second phase only when one of its fields is set)."""
    phases = [{"opponent": form["opponent"], "attack": form["attack"]}]
    if form["opponent2"] or form["attack2"]:
        phases.append({"opponent": form["opponent2"] or form["opponent"], "attack": form["attack2"] or form["attack"]})
    return {
        "name": form["name"],
        "pack": form["pack"] or None,
        "phases": phases,
        "eps_min": grey_to_eps(form["eps_min"]),
        "eps_max": grey_to_eps(form["eps_max"] or form["eps_min"]),
        "style": form["style"],
        "rounds": form["rounds"].strip(),
        "time_limit_s": minutes_to_seconds(form["time_minutes"]),
        "round_seconds": form["round_seconds"],
        "conditions": form["conditions"].strip() or None,
        "flash_ms": form["flash_ms"].strip() or None,
        "expected_players": form["expected_players"].strip() or None,
        "mode": form.get("mode") or "images",
        "image_mode": form["image_mode"] or None,
    }


@router.get("/host")
async def host_form(request: Request, player: CookiePlayer, catalog: CatalogDep) -> Response:
    context = {"player": player, "form": DEFAULT_FORM, "error": None, **catalog_choices(catalog)}
    return render(request, "pages/host_new.html", context)


@router.post("/host")
async def host_create(
    request: Request,
    session: SessionDep,
    player: CookiePlayer,
    catalog: CatalogDep,
    name: FormText = "",
    pack: FormText = "",
    opponent: FormText = "",
    attack: FormText = "",
    opponent2: FormText = "",
    attack2: FormText = "",
    eps_min: FormText = "",
    eps_max: FormText = "",
    style: FormText = "own_pace",
    rounds_limit: Annotated[str, Form(alias="rounds", max_length=10)] = "",
    time_minutes: FormText = "",
    round_seconds: FormText = "20",
    conditions: FormText = "",
    flash_ms: FormText = "",
    expected_players: FormText = "",
    mode: FormText = "images",
    image_mode: FormText = "fresh",
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
        "expected_players": expected_players,
        "mode": mode,
        "image_mode": image_mode,
    }
    try:
        event_name, event_pack, settings = events.validate_settings(settings_from_form(form), catalog=catalog)
    except ArenaError as error:
        context = {"player": player, "form": form, "error": error.message, **catalog_choices(catalog)}
        return render(request, "pages/host_new.html", context, status_code=error.status_code)
    event, token = await events.create_event(session, name=event_name, pack=event_pack, settings=settings)
    remember_host(request, event.code, token)
    request.session["flash"] = "Event created. Keep the host key (below) to run it from another device."
    return see_other(absolute(request, "host_console", code=event.code))


async def console_context(
    request: Request, session: AsyncSession, event: EventRecord, token: str, player: Any
) -> dict[str, Any]:
    settings = events.event_settings(event)
    shared = await events.current_shared_round(session, event)
    players = await events.event_players(session, event)
    join_url = join_link(request, "join_event_page", code=event.code)
    return {
        "player": player,
        "event": event,
        "settings": settings,
        "status": events.status_of(event),
        "seconds_left": events.seconds_left(event),
        "phase": events.current_phase(event),
        "players": players,
        "scores": await disclosure.shown_scores(session, players),
        "shared": shared,
        "shared_open": events.shared_is_open(shared),
        "shared_closes_at": iso_moment(shared.closes_at) if shared is not None else None,
        "join_url": join_url,
        "join_is_loopback": is_loopback_url(join_url),  # no phone in the room can open it
        "console_url": absolute(request, "host_console", code=event.code),
        "host_key": token,
        "flash": request.session.pop("flash", None),
        "eps_levels": [eps_as_grey_levels(e) for e in settings.eps_levels()],
        "stock": await events.stock_progress(session, event),
    }


@router.get("/events/{code}/host", name="host_console")
async def host_console(request: Request, code: str, session: SessionDep, player: CookiePlayer) -> Response:
    event = await events.event_by_code(session, code)
    if event.code not in hosting(request):  # another device: it asks for the host key (never taken from the address)
        context = {"player": player, "event": event, "message": messages.HOST_LINK_REQUIRED}
        return render(request, "pages/host_key.html", context, status_code=403)
    token = require_host(request, event)
    return render(request, "pages/host_console.html", await console_context(request, session, event, token, player))


@router.post("/events/{code}/host", name="host_key")
async def host_key(
    request: Request, code: str, session: SessionDep, key: FormText = "", csrf_token_field: CsrfField = None
) -> Response:
    """The host key typed on another device: posted, so it stays out of access logs and the browser's history."""
    check_csrf(request, csrf_token_field)
    event = await events.event_by_code(session, code)
    events.check_host(event, key.strip())
    remember_host(request, event.code, key.strip())
    return see_other(absolute(request, "host_console", code=event.code))


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
    if not await attempt(request, events.host_action(session, event=event, action=action, source=service)):
        return see_other(absolute(request, "host_console", code=code))
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
    hub.publish(event.code, status=True)  # the removed phone finds out
    request.session["flash"] = f"Removed {removed.nickname}."
    return see_other(absolute(request, "host_console", code=event.code))
