"""JSON API under /api/v1: thin routes that parse, call app.game / app.stats, and shape the reply."""

from __future__ import annotations

from typing import Any, Literal, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.api.limits import fair_share_key
from app.api.reveals import answer_locked, reveal_fields
from app.api.schemas import (
    AnswerIn,
    AnswerLocked,
    AnswerOut,
    AttackInfo,
    LeaderboardEntry,
    OpponentOut,
    PlayerCreate,
    PlayerCreated,
    Problem,
    RoundCreate,
    RoundCreated,
    TallyOut,
    ThresholdOut,
)
from app.db.tables import PlayerRecord
from app.deps import ApiPlayer, HubDep, ServiceDep, SessionDep, SettingsDep
from app.game import disclosure, events, play, threshold
from app.game.catalogue import Catalogue, playable_attacks, playable_in_rounds
from app.game.reveal import budget_text
from app.stats import export
from app.stats.leaderboard import leaderboard, tally
from app.stats.text import pack_class_names

router = APIRouter(prefix="/api/v1", tags=["api"])

ERRORS = {
    401: {"model": Problem, "description": "Missing or invalid player token"},
    404: {"model": Problem, "description": "No such round (or not yours)"},
    409: {"model": Problem, "description": "Already answered"},
    422: {"description": "Invalid input"},
    503: {"model": Problem, "description": "Model service busy or down; retry after Retry-After seconds"},
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error replies (ERRORS) for these status codes, for a route's ``responses``."""
    return {code: cast(dict[str, Any], ERRORS[code]) for code in codes}


# The URLs a round's replies carry, built as url_for builds them but without it: url_for walks every route of the
# app until one matches, 3% of a prepared event's request time (benchmarks/RESULTS.md, "Prepared rounds: where the
# time goes"). tests/api/test_api_contract.py checks them against url_for.
ROUND_IMAGE_PATH = "/rounds/{round_id}/{kind}.png"  # app/web/routes.round_image
ANSWER_PATH = "/rounds/{round_id}/answer"  # answer_round below


def absolute_url(request: Request, path: str) -> str:
    """``path`` (from the app's root) as an absolute URL on the request's base, as ``request.url_for`` gives it."""
    return str(request.base_url).rstrip("/") + path


def image_urls(request: Request, round_id: str) -> dict[str, str]:
    base = str(request.base_url).rstrip("/")
    return {kind: base + ROUND_IMAGE_PATH.format(round_id=round_id, kind=kind) for kind in play.IMAGE_KINDS}


def answer_url(request: Request, round_id: str) -> str:
    return absolute_url(request, router.prefix + ANSWER_PATH.format(round_id=round_id))


@router.post(
    "/players",
    status_code=201,
    response_model=PlayerCreated,
    responses={
        404: {"model": Problem, "description": "No event with that code"},
        409: {"model": Problem, "description": "Event ended or locked, or nickname taken in it"},
        422: ERRORS[422],
    },
)
async def create_player(body: PlayerCreate, session: SessionDep, hub: HubDep) -> PlayerCreated:
    """A player on their own, or, with ``event_code``, a player in a workshop event (nickname unique there)."""
    player, token, event = await play.join(session, nickname=body.nickname, event_code=body.event_code)
    if event is None:
        return PlayerCreated(player_id=player.id, nickname=player.nickname, token=token)
    hub.publish(event.code)
    return PlayerCreated(player_id=player.id, nickname=player.nickname, token=token, event_code=event.code)


@router.post("/rounds", status_code=201, response_model=RoundCreated, responses=errors(401, 422, 503))
async def create_round(
    request: Request,
    player: ApiPlayer,
    session: SessionDep,
    service: ServiceDep,
    settings: SettingsDep,
    body: RoundCreate | None = None,
) -> RoundCreated:
    choice = body or RoundCreate()
    wanted = play.RoundChoice(opponent=choice.opponent, attack=choice.attack, task=choice.task)
    view = await play.new_round(
        session,
        Catalogue(service),
        player=player,
        choice=wanted,
        settings=settings,
        client_key=fair_share_key(request),
    )
    record = view.record
    return RoundCreated(
        round_id=record.id,
        task=record.task,
        flash_ms=record.flash_ms,
        image_url=image_urls(request, record.id)["adversarial"],
        choices=[name for _, name in view.choices],
        opponent=record.opponent,
        attack=record.attack,
        norm=record.norm,
        eps=record.eps,
        eps_text=budget_text(record.norm, record.eps, record.attack_params),
        answer_url=answer_url(request, record.id),
    )


def answer_out(request: Request, view: play.RoundView, player: PlayerRecord, score: int) -> AnswerOut:
    """The reveal; ``score`` is the player's score as the reveal rule shows it (disclosure.shown_score)."""
    record = view.record
    answer, reveal = view.revealed()
    urls = image_urls(request, record.id)
    return AnswerOut(
        **reveal_fields(reveal, score=score, streak=player.streak),
        eps=reveal.eps,
        eps_text=reveal.eps_text,
        response_ms=reveal.response_ms,
        opponent=reveal.opponent,
        attack=reveal.attack,
        threat_model=reveal.threat_model,
        norm=reveal.norm,
        attack_explanation=reveal.attack_explanation,
        queries=reveal.queries,
        query_budget=reveal.query_budget,
        surrogate=reveal.surrogate,
        condition=reveal.condition,
        task=reveal.task,
        flash_ms=record.flash_ms,
        shown_ms=answer.shown_ms,
        timing_flagged=answer.timing_flagged,
        defense_verdict=reveal.defense_verdict,
        defense_text=reveal.defense_text,
        certified_radius=reveal.certified_radius,
        linf=reveal.linf,
        l2=reveal.l2,
        original_url=urls["original"],
        adversarial_url=urls["adversarial"],
        perturbation_url=urls["perturbation"],
    )


@router.post(
    ANSWER_PATH,
    response_model=AnswerOut | AnswerLocked,
    responses=errors(401, 404, 409, 422),
)
async def answer_round(
    request: Request,
    round_id: str,
    body: AnswerIn,
    player: ApiPlayer,
    session: SessionDep,
    service: ServiceDep,
    hub: HubDep,
) -> AnswerOut | AnswerLocked:
    # the answer is on disk before the reply leaves
    view = await play.answer(
        session, Catalogue(service), player=player, round_id=round_id, choice=body.choice, shown_ms=body.shown_ms
    )
    if view.event_code is not None:
        hub.publish(view.event_code)  # the event's screens update
    locked = answer_locked(request, view, "get_answered_round")
    if locked is not None:
        return locked
    return answer_out(request, view, player, await disclosure.shown_score(session, player))


@router.get("/rounds/{round_id}", response_model=AnswerOut, responses=errors(401, 404, 409))
async def get_answered_round(
    request: Request, round_id: str, player: ApiPlayer, session: SessionDep, service: ServiceDep
) -> AnswerOut:
    """The reveal of an answered round, to show it again. An unanswered round reveals nothing (409)."""
    view = await play.revealed_round(session, Catalogue(service), player=player, round_id=round_id)
    return answer_out(request, view, player, await disclosure.shown_score(session, player))


EventFilter = Query(None, max_length=20, description="Only this event (its join code); default: everyone")


async def event_filter(session: SessionDep, code: str | None) -> str | None:
    return None if code is None else (await events.event_by_code(session, code)).id


@router.get("/players/me/threshold", response_model=list[ThresholdOut], responses={401: ERRORS[401]})
async def my_threshold(player: ApiPlayer, session: SessionDep, service: ServiceDep) -> list[ThresholdOut]:
    """Per opponent faced: the budget at which this player's accuracy falls to 50% (their staircase's reversals),
    beside the machine's (the budget at which PGD-20 fools it half the time)."""
    catalogue = Catalogue(service)
    min_eps = {name: catalogue.opponent_info(name).min_eps for name in catalogue.opponent_names()}
    found = await threshold.player_thresholds(session, player.id, min_eps)
    return [ThresholdOut(**vars(item)) for item in found]


@router.get("/attacks", response_model=list[AttackInfo])
async def list_attacks(service: ServiceDep) -> list[AttackInfo]:
    """Every attack in the library: threat model, norm, parameters with defaults and ranges, what its budget
    means, a plain-words explanation, and which of the loaded opponents a round with it can face."""
    catalogue = Catalogue(service)
    infos = catalogue.opponents()
    return [
        AttackInfo(
            **attack,
            playable_in_rounds=any(playable_in_rounds(attack, info) for info in infos),
            playable_against=[info.name for info in infos if playable_in_rounds(attack, info)],
        )
        for attack in catalogue.attack_catalog()
    ]


def architecture_text(architecture: object) -> str:
    if isinstance(architecture, dict):
        return " ".join(str(architecture[key]) for key in ("net", "layers") if key in architecture)
    return str(architecture or "")


@router.get("/opponents", response_model=list[OpponentOut])
async def list_opponents(service: ServiceDep, settings: SettingsDep) -> list[OpponentOut]:
    """The classifiers players can face, the default first, each with its model card (how it was trained and
    how robust it measured) and the attacks a round can use against it."""
    catalogue = Catalogue(service)
    opponents = []
    for name in catalogue.opponent_names():
        info = catalogue.opponent_info(name)
        card = dict(info.card)
        opponents.append(
            OpponentOut(
                name=name,
                pack=info.pack,
                description=str(card.get("description", "")),
                architecture=architecture_text(card.get("architecture")),
                differentiable=info.differentiable,
                clean_accuracy=info.clean_accuracy,
                min_eps=info.min_eps,
                default=name == settings.opponent,
                attacks=playable_attacks(catalogue, info),
                card=card,
            )
        )
    return opponents


@router.get("/leaderboard", response_model=list[LeaderboardEntry], responses={404: {"model": Problem}})
async def get_leaderboard(
    session: SessionDep, limit: int = Query(20, ge=1, le=500), event: str | None = EventFilter
) -> list[LeaderboardEntry]:
    rows = await leaderboard(session, limit=limit, event_id=await event_filter(session, event))
    return [LeaderboardEntry.model_validate(row) for row in rows]


@router.get("/tally", response_model=TallyOut, responses={404: {"model": Problem}})
async def get_tally(session: SessionDep, event: str | None = EventFilter) -> TallyOut:
    return TallyOut.model_validate(await tally(session, event_id=await event_filter(session, event)))


@router.get("/export/answers.{fmt}", response_class=StreamingResponse)
async def export_answers(
    request: Request,
    fmt: Literal["csv", "json", "jsonl"],
    service: ServiceDep,
    download: bool = Query(False, description="Send Content-Disposition: attachment"),
) -> StreamingResponse:
    """Every answer, one row each, oldest first, streamed in pages, each read in a short session of its own so
    that a slow client holds no connection while it reads; a few downloads at once (then 503 with Retry-After)."""
    sessionmaker = request.app.state.database.sessionmaker

    def class_names_of(pack: str) -> tuple[str, ...]:
        return pack_class_names(pack)  # the text pack's too (app/stats/text.py)

    media = export.MEDIA_TYPES[fmt]
    headers = {"Content-Disposition": f'attachment; filename="answers.{fmt}"'} if download else {}
    chunks = export.stream_answers(sessionmaker, fmt, class_names_of)
    return request.app.state.downloads.stream(chunks, media_type=media, headers=headers)
