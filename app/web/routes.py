"""HTML pages and HTMX fragments. Every mutation is a plain <form method="post"> that works without JavaScript
(303 redirect to a GET); with htmx the same route answers with just the fragment that changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from app import messages
from app.db.tables import AnswerRecord, EventRecord, RoundRecord
from app.deps import CookiePlayer, HxRequest, ServiceDep, SessionDep, SettingsDep, check_csrf, csrf_token
from app.errors import ArenaError, Invalid, NotFound, Unauthorized
from app.game import conditions, events, players, rounds, threshold
from app.game.scoring import BEAT_MACHINE_BONUS, CORRECT_POINTS, STREAK_BONUS, STREAK_BONUS_FROM
from app.images import amplified_perturbation, from_png, to_png
from app.ml.service.contracts import ModelService
from app.stats.leaderboard import leaderboard, tally

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=200)]
CsrfField = Annotated[str | None, Form(alias="csrf_token")]


def render(
    request: Request, template: str, context: dict[str, Any], *, block: str | None = None, status_code: int = 200
) -> Response:
    templates = request.app.state.templates
    player = context.get("player")
    base = {"request": request, "csrf_token": csrf_token(request), "player": player, "fragment": block is not None}
    base.update(context)
    if block is not None:
        response: Response = templates.TemplateResponse(
            request, template, base, block_name=block, status_code=status_code
        )
    else:
        response = templates.TemplateResponse(request, template, base, status_code=status_code)
    response.headers["Vary"] = "HX-Request"
    return response


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/")
async def home(request: Request, player: CookiePlayer, session: SessionDep) -> Response:
    board = await leaderboard(session, limit=5)
    return render(request, "pages/home.html", {"player": player, "board": board, "error": None, "nickname": ""})


@router.post("/join")
async def join(
    request: Request, session: SessionDep, nickname: FormText = "", csrf_token_field: CsrfField = None
) -> Response:
    check_csrf(request, csrf_token_field)
    try:
        player, _token = await players.create_player(session, nickname=nickname)
    except ArenaError as error:
        board = await leaderboard(session, limit=5)
        context = {"player": None, "board": board, "error": error.message, "nickname": nickname[:24]}
        return render(request, "pages/home.html", context, status_code=error.status_code)
    await session.commit()
    request.session["player_id"] = player.id
    return see_other(str(request.url_for("play")))


@router.post("/leave")
async def leave(request: Request, csrf_token_field: CsrfField = None) -> Response:
    check_csrf(request, csrf_token_field)
    request.session.pop("player_id", None)
    return see_other("/")


async def to_event(request: Request, session: Any, event_id: str) -> Response:
    event = await session.get(EventRecord, event_id)
    if event is None:
        return see_other("/")
    return see_other(str(request.url_for("event_play", code=event.code)))


def require_player(player: Any) -> Any:
    if player is None:
        raise Unauthorized(messages.PLAYER_REQUIRED)
    return player


def chooser_context(request: Request, service: ModelService, settings: Any) -> dict[str, Any]:
    """The opponents and attacks a player may pick, and what they picked last (kept in the session cookie)."""
    opponents = [service.opponent_info(name) for name in service.opponent_names()]
    catalog = service.attack_catalog()
    return {
        "opponents": opponents,
        "attacks": catalog,
        "threat_models": THREAT_MODEL_WORDS,
        "chosen_opponent": request.session.get("opponent") or settings.opponent,
        "chosen_attack": request.session.get("attack") or "",
        "chosen_task": request.session.get("task") or "classify",
    }


# How each threat model is put to players in the chooser and the reveal.
THREAT_MODEL_WORDS = {
    "white-box": "sees the model's insides (gradients)",
    "score": "sees only the model's scores",
    "decision": "sees only the model's top answer",
    "transfer": "never touches this model: crafted on another one",
}


@router.get("/play")
async def play(
    request: Request, player: CookiePlayer, session: SessionDep, service: ServiceDep, settings: SettingsDep
) -> Response:
    if player is None:
        return see_other("/")
    if player.event_id is not None:  # an event's player plays by the event's rules, on its page
        return await to_event(request, session, player.event_id)
    latest = await session.scalar(
        select(RoundRecord)
        .outerjoin(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
        .where(RoundRecord.player_id == player.id, AnswerRecord.id.is_(None))
        .order_by(RoundRecord.created_at.desc())
        .limit(1)
    )
    if latest is not None:
        return see_other(str(request.url_for("show_round", round_id=latest.id)))
    context = {"player": player, "round": None, "reveal": None, "threshold": None, "choices": []}
    context.update(chooser_context(request, service, settings))
    return render(request, "pages/play.html", context)


ChoiceField = Annotated[str | None, Form(max_length=60)]


@router.post("/play/rounds")
async def new_round(
    request: Request,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    settings: SettingsDep,
    hx: HxRequest,
    csrf_token_field: CsrfField = None,
    opponent: ChoiceField = None,
    attack: ChoiceField = None,
    task: ChoiceField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    player = require_player(player)
    if player.event_id is not None:
        return await to_event(request, session, player.event_id)
    submitted = opponent is not None  # the chooser was sent: it replaces the remembered choice ("" = default)
    if submitted:
        wanted_opponent, wanted_attack = opponent or None, attack or None
    else:
        wanted_opponent, wanted_attack = request.session.get("opponent"), request.session.get("attack")
    default = rounds.RoundPlan(opponent=settings.opponent, attack=settings.attack, steps=settings.attack_steps)
    mix = conditions.parse_mix(settings.condition_mix)
    plan = rounds.choose_plan(service, default=default, opponent=wanted_opponent, attack=wanted_attack, mix=mix)
    wanted_task = (task if submitted else request.session.get("task")) or "classify"
    if wanted_task not in rounds.TASKS:
        raise Invalid(messages.ROUND_TASK_UNKNOWN.format(valid=", ".join(rounds.TASKS)))
    if submitted:  # remembered only once it proved playable, so a refused choice cannot stick
        request.session["opponent"], request.session["attack"] = wanted_opponent, wanted_attack
        request.session["task"] = wanted_task
    record = await rounds.start_round(
        session, player=player, source=service, plan=plan, release_connection=True, task=wanted_task
    )
    await session.commit()
    if hx:
        context = await round_context(request, session, player, record, None, service, settings)
        return render(request, "pages/play.html", context, block="stage")
    return see_other(str(request.url_for("show_round", round_id=record.id)))


async def round_context(
    request: Request,
    session: Any,
    player: Any,
    record: RoundRecord,
    answer: AnswerRecord | None,
    service: ModelService,
    settings: Any,
) -> dict[str, Any]:
    info = service.opponent_info(record.opponent)
    attack = rounds.attack_entry(service, record.attack)
    reveal = rounds.build_reveal(record, answer, info.class_names, attack) if answer is not None else None
    found = None
    if reveal is not None:  # the player's threshold so far on this opponent, beside the machine's
        estimates = await threshold.player_thresholds(session, player.id, {record.opponent: info.min_eps})
        found = estimates[0] if estimates else None
    context = {
        "player": player,
        "round": record,
        "reveal": reveal,
        "threshold": found,
        "choices": rounds.offered_choices(record, info.class_names),
    }
    context.update(chooser_context(request, service, settings))
    return context


@router.get("/play/rounds/{round_id}")
async def show_round(
    request: Request,
    round_id: str,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    settings: SettingsDep,
) -> Response:
    if player is None:
        return see_other("/")
    record = await rounds.player_round(session, player=player, round_id=round_id)
    answer = await rounds.round_answer(session, round_id)
    context = await round_context(request, session, player, record, answer, service, settings)
    return render(request, "pages/play.html", context)


@router.post("/play/rounds/{round_id}/answer")
async def answer(
    request: Request,
    round_id: str,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    settings: SettingsDep,
    hx: HxRequest,
    choice: FormText = "",
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    player = require_player(player)
    record, answer_record, event = await events.answer_round(
        session, player=player, round_id=round_id, choice=choice, source=service
    )
    await session.commit()  # committed before the reveal is sent
    if event is not None:
        request.app.state.hub.publish(event.code)
    if hx:
        context = await round_context(request, session, player, record, answer_record, service, settings)
        return render(request, "pages/play.html", context, block="stage")
    return see_other(str(request.url_for("show_round", round_id=round_id)))


@router.get("/leaderboard")
async def leaderboard_page(
    request: Request, player: CookiePlayer, session: SessionDep, event: str | None = Query(None, max_length=20)
) -> Response:
    """Everyone, events included; ``?event=CODE`` keeps one event apart."""
    chosen = await events.event_by_code(session, event) if event else None
    event_id = chosen.id if chosen is not None else None
    board = await leaderboard(session, limit=50, event_id=event_id)
    context = {"player": player, "board": board, "tally": await tally(session, event_id=event_id), "event": chosen}
    return render(request, "pages/leaderboard.html", context)


@router.get("/about")
async def about(request: Request, player: CookiePlayer) -> Response:
    scoring = {
        "correct": CORRECT_POINTS,
        "beat": BEAT_MACHINE_BONUS,
        "streak": STREAK_BONUS,
        "streak_from": STREAK_BONUS_FROM,
    }
    return render(request, "pages/about.html", {"player": player, "scoring": scoring})


IMAGE_KINDS = ("adversarial", "original", "perturbation")


@router.get("/rounds/{round_id}/{kind}.png", name="round_image")
async def round_image(round_id: str, kind: str, session: SessionDep) -> Response:
    """The round id is the capability: 128 random bits. What the player is shown is public to whoever holds the
    id; the original and the perturbation only exist once the round has been answered."""
    if kind not in IMAGE_KINDS:
        raise NotFound(messages.ROUND_NOT_FOUND)
    record = await session.get(RoundRecord, round_id)
    if record is None:
        raise NotFound(messages.ROUND_NOT_FOUND)
    if kind == "adversarial":
        data = record.adversarial_png
    else:
        if await rounds.round_answer(session, round_id) is None:
            raise NotFound(messages.REVEAL_NOT_READY)
        if await events.truth_hidden_until(session, record) is not None:
            raise NotFound(messages.TRUTH_HIDDEN_UNTIL_CLOSE)
        if kind == "original":
            data = record.clean_png
        else:
            data = to_png(amplified_perturbation(from_png(record.clean_png), from_png(record.adversarial_png)))
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})
