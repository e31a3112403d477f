"""Text rounds in the browser (issue #18): read a definition, say what kind of thing it defines, see the original
with the changed words marked. Thin routes over app/game/text_play.py; every mutation is a plain form that redirects
(303), and with htmx the same route answers with the stage fragment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.limits import fair_share_key
from app.db.tables import PlayerRecord
from app.deps import CookiePlayer, HxRequest, ServiceDep, SessionDep, SettingsDep, check_csrf
from app.game import text, text_play
from app.game.catalogue import Catalogue
from app.ml.service.text_contracts import TEXT_ATTACKS
from app.stats.text import text_table
from app.web.routes import (
    ChoiceField,
    CsrfField,
    FormText,
    countdown_context,
    play_elsewhere,
    render,
    reply_to_answer,
    require_player,
    round_url,
    see_other,
    to_event,
)
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(include_in_schema=False, dependencies=SHOWN_SCORE)

ATTACK_WORDS = {
    "textfooler": "swaps words for WordNet synonyms, the ones that move the machine most (TextFooler)",
    "deepwordbug": "makes typos you read through: swapped, dropped or nearby-key letters (DeepWordBug)",
    "transfer": "swaps synonyms chosen on the other text model, never on this one (transfer)",
}


async def chooser(request: Request, catalogue: Catalogue) -> dict[str, Any]:
    return {
        "text_opponents": await catalogue.text_opponents(),
        "text_attacks": [(name, ATTACK_WORDS[name]) for name in TEXT_ATTACKS],
        "chosen_opponent": request.session.get("text_opponent") or "",
        "chosen_attack": request.session.get("text_attack") or text.DEFAULT_TEXT_ATTACK,
    }


async def stage_context(
    request: Request, player: PlayerRecord, view: text_play.TextView | None, catalogue: Catalogue
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "player": player,
        "round": view.record if view else None,
        "reveal": view.reveal if view else None,
        "choices": view.choices if view else [],
    }
    context.update(countdown_context(view))
    context.update(await chooser(request, catalogue))
    return context


@router.get("/play/text", name="text_play")
async def text_page(request: Request, player: CookiePlayer, session: SessionDep, service: ServiceDep) -> Response:
    if player is None:
        return see_other("/")
    elsewhere = await play_elsewhere(request, session, player)
    if elsewhere is not None:
        return elsewhere
    context = await stage_context(request, player, None, Catalogue(service))
    return render(request, "pages/text_play.html", context)


@router.post("/play/text/rounds")
async def new_text_round(
    request: Request,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    settings: SettingsDep,
    hx: HxRequest,
    csrf_token_field: CsrfField = None,
    opponent: ChoiceField = None,
    attack: ChoiceField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    player = require_player(player)
    if player.event_id is not None:
        return await to_event(request, session, player)
    if opponent is not None:  # the chooser was sent: remembered once the round proved playable
        chosen_opponent, chosen_attack = opponent or None, attack or None
    else:
        chosen_opponent, chosen_attack = request.session.get("text_opponent"), request.session.get("text_attack")
    catalogue = Catalogue(service)
    record = await text_play.new_text_round(
        session,
        catalogue,
        player=player,
        settings=settings,
        opponent=chosen_opponent,
        attack=chosen_attack,
        client_key=fair_share_key(request),
    )
    if opponent is not None:
        request.session["text_opponent"], request.session["text_attack"] = chosen_opponent, chosen_attack
    if not text.is_text(record):  # an image round still waits for its answer
        return see_other(round_url(request, record.id, is_text=False))
    if hx:
        view = await text_play.text_view(session, catalogue, record=record)
        context = await stage_context(request, player, view, catalogue)
        return render(request, "pages/text_play.html", context, block="stage")
    return see_other(round_url(request, record.id, is_text=True))


@router.get("/play/text/rounds/{round_id}", name="show_text_round")
async def show_text_round(
    request: Request, round_id: str, player: CookiePlayer, session: SessionDep, service: ServiceDep
) -> Response:
    if player is None:
        return see_other("/")
    catalogue = Catalogue(service)
    view = await text_play.show_text_round(session, catalogue, player=player, round_id=round_id)
    return render(request, "pages/text_play.html", await stage_context(request, player, view, catalogue))


@router.post("/play/text/rounds/{round_id}/answer")
async def answer_text_round(
    request: Request,
    round_id: str,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    hx: HxRequest,
    choice: FormText = "",
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    player = require_player(player)
    catalogue = Catalogue(service)
    view = await text_play.answer_text(session, catalogue, player=player, round_id=round_id, choice=choice)
    stage = await stage_context(request, player, view, catalogue) if hx else None
    page_url = round_url(request, round_id, is_text=True)
    return await reply_to_answer(
        request,
        session,
        player,
        event_code=view.event_code,
        stage=stage,
        template="pages/text_play.html",
        page_url=page_url,
    )


@router.get("/stats/text", name="text_stats_page")
async def text_stats_page(request: Request, player: CookiePlayer, session: SessionDep) -> Response:
    """The text rounds' table: people and the machine by opponent, condition and budget, with intervals."""
    cells = await text_table(session)
    return render(request, "pages/text_stats.html", {"player": player, "cells": cells})
