"""HTML pages and HTMX fragments. Every mutation is a plain <form method="post"> that works without JavaScript
(303 redirect to a GET); with htmx the same route answers with just the fragment that changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from app import messages
from app.api.limits import fair_share_key
from app.config import Settings
from app.db.queries import latest_unanswered_round
from app.db.tables import PlayerRecord
from app.deps import CookiePlayer, HxRequest, ServiceDep, SessionDep, SettingsDep, check_csrf, csrf_token
from app.errors import ArenaError, Unauthorized
from app.game import disclosure, events, play, text, text_play
from app.game.catalogue import Catalogue
from app.game.scoring import BEAT_MACHINE_BONUS, CORRECT_POINTS, STREAK_BONUS, STREAK_BONUS_FROM
from app.stats.leaderboard import leaderboard, tally
from app.stats.policy import policy_board
from app.web.shown_score import SHOWN_SCORE, header_score

router = APIRouter(include_in_schema=False, dependencies=SHOWN_SCORE)

FormText = Annotated[str, Form(max_length=200)]
CsrfField = Annotated[str | None, Form(alias="csrf_token")]


def render(
    request: Request, template: str, context: dict[str, Any], *, block: str | None = None, status_code: int = 200
) -> Response:
    templates = request.app.state.templates
    player = context.get("player")
    base = {
        "request": request,
        "csrf_token": csrf_token(request),
        "player": player,
        "fragment": block is not None,
        "score_shown": header_score(request, player),
    }
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


async def home_page(
    request: Request,
    session: SessionDep,
    player: PlayerRecord | None,
    *,
    error: ArenaError | None = None,
    nickname: str = "",
) -> Response:
    board = await leaderboard(session, limit=5)
    context = {"player": player, "board": board, "error": error.message if error else None, "nickname": nickname}
    return render(request, "pages/home.html", context, status_code=error.status_code if error else 200)


@router.get("/")
async def home(request: Request, player: CookiePlayer, session: SessionDep) -> Response:
    return await home_page(request, session, player)


@router.post("/join")
async def join(
    request: Request, session: SessionDep, nickname: FormText = "", csrf_token_field: CsrfField = None
) -> Response:
    check_csrf(request, csrf_token_field)
    try:
        player, _token, _event = await play.join(session, nickname=nickname)
    except ArenaError as error:
        return await home_page(request, session, None, error=error, nickname=nickname[:24])
    request.session["player_id"] = player.id
    return see_other(str(request.url_for("play")))


@router.post("/leave")
async def leave(request: Request, csrf_token_field: CsrfField = None) -> Response:
    check_csrf(request, csrf_token_field)
    request.session.pop("player_id", None)
    request.session.pop("hosting", None)  # the host keys this browser holds leave with it
    return see_other("/")


async def to_event(request: Request, session: SessionDep, player: PlayerRecord) -> Response:
    event = await events.event_of_player(session, player)
    if event is None:
        return see_other("/")
    return see_other(str(request.url_for("event_play", code=event.code)))


def require_player(player: PlayerRecord | None) -> PlayerRecord:
    if player is None:
        raise Unauthorized(messages.PLAYER_REQUIRED)
    return player


def round_url(request: Request, round_id: str, *, is_text: bool) -> str:
    """The page of a round: image and text rounds have their own."""
    return str(request.url_for("show_text_round" if is_text else "show_round", round_id=round_id))


async def play_elsewhere(request: Request, session: SessionDep, player: PlayerRecord) -> Response | None:
    """Where a play page sends a player instead of offering a new round: an event's player to the event's page (it
    plays by the event's rules), anyone else with an unanswered round, image or text, to that round."""
    if player.event_id is not None:
        return await to_event(request, session, player)
    latest = await latest_unanswered_round(session, player.id)
    if latest is not None:
        return see_other(round_url(request, latest.id, is_text=text.is_text(latest)))
    return None


def countdown_context(view: play.RoundView | text_play.TextView | None) -> dict[str, Any]:
    """An answer the reveal rule still hides (a room's countdown): the label the player locked in, and when the
    truth shows."""
    locked = view is not None and view.answer is not None and view.reveal is None
    return {
        "locked_label": view.class_names[view.answer.choice] if locked and view and view.answer else None,
        "reveals_at": view.truth_hidden_until.isoformat() if view and view.truth_hidden_until else None,
    }


async def reply_to_answer(
    request: Request,
    session: SessionDep,
    player: PlayerRecord,
    *,
    event_code: str | None,
    stage: dict[str, Any] | None,
    template: str,
    page_url: str,
) -> Response:
    """After an answer is committed: the event's screens hear of it; with htmx (``stage`` given) the stage
    fragment with the header score that counts this answer's points, without it a redirect to the round's page."""
    if event_code is not None:
        request.app.state.hub.publish(event_code)
    if stage is None:
        return see_other(page_url)
    stage["score_shown"] = await disclosure.shown_score(session, player)
    return render(request, template, stage, block="stage")


def chooser_context(request: Request, catalogue: Catalogue, settings: Settings) -> dict[str, Any]:
    """The opponents and attacks a player may pick, and what they picked last (kept in the session cookie)."""
    return {
        "opponents": catalogue.opponents(),
        "attacks": catalogue.attack_catalog(),
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


@router.get("/play", name="play")
async def play_page(
    request: Request, player: CookiePlayer, session: SessionDep, service: ServiceDep, settings: SettingsDep
) -> Response:
    if player is None:
        return see_other("/")
    elsewhere = await play_elsewhere(request, session, player)
    if elsewhere is not None:
        return elsewhere
    context = {"player": player, "round": None, "reveal": None, "threshold": None, "choices": []}
    context.update(chooser_context(request, Catalogue(service), settings))
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
        return await to_event(request, session, player)
    submitted = opponent is not None  # the chooser was sent: it replaces the remembered choice ("" = default)
    if submitted:
        choice = play.RoundChoice(opponent or None, attack or None, task or "classify")
    else:
        remembered = request.session
        choice = play.RoundChoice(
            remembered.get("opponent"), remembered.get("attack"), remembered.get("task") or "classify"
        )

    def remember(accepted: play.RoundChoice) -> None:
        # kept only once it proved playable, so a refused choice cannot stick
        if submitted:
            request.session["opponent"], request.session["attack"] = accepted.opponent, accepted.attack
            request.session["task"] = accepted.task

    catalogue = Catalogue(service)
    try:
        view = await play.new_round(
            session,
            catalogue,
            player=player,
            choice=choice,
            settings=settings,
            accepted=remember,
            client_key=fair_share_key(request),
        )
    except play.RoundIsText as text_round:  # the player's pending round is a text round
        return see_other(round_url(request, text_round.round_id, is_text=True))
    if hx:
        return render(
            request, "pages/play.html", round_context(request, player, view, catalogue, settings), block="stage"
        )
    return see_other(round_url(request, view.record.id, is_text=False))


def round_context(
    request: Request, player: PlayerRecord, view: play.RoundView, catalogue: Catalogue, settings: Settings
) -> dict[str, Any]:
    context = {
        "player": player,
        "round": view.record,
        "reveal": view.reveal,
        "threshold": view.threshold,
        "choices": view.choices,
    }
    context.update(countdown_context(view))
    context.update(chooser_context(request, catalogue, settings))
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
    catalogue = Catalogue(service)
    try:
        view = await play.show_round(session, catalogue, player=player, round_id=round_id)
    except play.RoundIsText as text_round:
        return see_other(round_url(request, text_round.round_id, is_text=True))
    return render(request, "pages/play.html", round_context(request, player, view, catalogue, settings))


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
    catalogue = Catalogue(service)
    # committed before the reveal is sent
    view = await play.answer(session, catalogue, player=player, round_id=round_id, choice=choice, with_threshold=hx)
    stage = round_context(request, player, view, catalogue, settings) if hx else None
    page_url = round_url(request, round_id, is_text=False)
    return await reply_to_answer(
        request, session, player, event_code=view.event_code, stage=stage, template="pages/play.html", page_url=page_url
    )


@router.get("/leaderboard")
async def leaderboard_page(
    request: Request, player: CookiePlayer, session: SessionDep, event: str | None = Query(None, max_length=20)
) -> Response:
    """Everyone, events included; ``?event=CODE`` keeps one event apart."""
    chosen = await events.event_by_code(session, event) if event else None
    event_id = chosen.id if chosen is not None else None
    board = await leaderboard(session, limit=50, event_id=event_id)
    context: dict[str, Any] = {"player": player, "board": board, "tally": await tally(session, event_id=event_id)}
    context["event"] = chosen
    context["policy_board"] = await policy_board(session, limit=20, event_id=event_id)  # pick the moments (issue 19)
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


@router.get("/rounds/{round_id}/{kind}.png", name="round_image")
async def round_image(round_id: str, kind: str, session: SessionDep) -> Response:
    """The round id is the capability (app/game/play.round_image says what each kind shows, and when)."""
    data = await play.round_image(session, round_id=round_id, kind=kind)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})
