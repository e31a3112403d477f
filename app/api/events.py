"""JSON API for workshop events: create, host controls (Bearer host token), state, stats and exports."""

from __future__ import annotations

from typing import Any, Literal, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import StringConvertor, register_url_convertor

from app.api.schemas import (
    AgreementOut,
    EpsStats,
    EventCreate,
    EventCreated,
    EventPlayer,
    EventState,
    EventStats,
    ItemAgreementOut,
    PhaseOut,
    Problem,
    ProportionOut,
    SharedRoundOut,
)
from app.db.tables import EventRecord
from app.deps import CatalogDep, HostToken, HubDep, ServiceDep, SessionDep
from app.game import disclosure, events, text
from app.game.difficulty import eps_as_grey_levels
from app.stats import agreement, export
from app.stats import events as event_stats
from app.stats.events import Proportion
from app.stats.text import pack_class_names
from app.web.room import join_link

router = APIRouter(prefix="/api/v1/events", tags=["events"])

HOST_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "Missing or wrong host token"},
    404: {"model": Problem, "description": "No event with that code"},
    409: {"model": Problem, "description": "Not possible in the event's current state (ended, not running, ...)"},
}


def event_urls(request: Request, code: str) -> dict[str, str]:
    return {
        "join_url": join_link(request, "join_event_page", code=code),
        "screen_url": str(request.url_for("event_screen", code=code)),
        "host_url": str(request.url_for("host_console", code=code)),
        "report_url": str(request.url_for("event_report", code=code)),
    }


def settings_payload(body: EventCreate) -> dict[str, Any]:
    raw = body.model_dump()
    if body.phases is None:
        raw["phases"] = [{"opponent": body.opponent or "fashion-cnn", "attack": body.attack or "pgd"}]
    return raw


@router.post("", status_code=201, response_model=EventCreated, responses={422: {"model": Problem}})
async def create_event(request: Request, body: EventCreate, session: SessionDep, catalog: CatalogDep) -> EventCreated:
    name, pack, settings = events.validate_settings(settings_payload(body), catalog=catalog)
    event, host_token = await events.create_event(session, name=name, pack=pack, settings=settings)
    return EventCreated(code=event.code, host_token=host_token, **event_urls(request, event.code))


async def event_state(session: AsyncSession, event: EventRecord) -> EventState:
    settings = events.event_settings(event)
    shared = await events.current_shared_round(session, event)
    stock = await events.stock_progress(session, event)
    return EventState(
        code=event.code,
        name=event.name,
        status=events.status_of(event),
        locked=event.locked,
        style=settings.style,
        phase=event.phase,
        phases=[PhaseOut(opponent=p.opponent, attack=p.attack) for p in settings.phases],
        # a text event's budgets are shares of words (app/game/text.py)
        eps_levels=list(text.EVENT_LEVELS if text.is_text_pack(event.pack) else settings.eps_levels()),
        rounds=settings.rounds,
        time_limit_s=settings.time_limit_s,
        seconds_left=events.seconds_left(event),
        players=await events.player_count(session, event),
        prepared_images=stock.made,
        images_to_prepare=stock.target,
        image_mode=settings.image_mode,
        shared_round=None
        if shared is None
        else SharedRoundOut(
            number=shared.number,
            open=events.shared_is_open(shared),
            closes_at=events.aware(shared.closes_at).isoformat(),  # type: ignore[union-attr]
            eps=shared.eps,
        ),
    )


@router.get("/{code}", response_model=EventState, responses={404: HOST_ERRORS[404]})
async def get_event(code: str, session: SessionDep) -> EventState:
    return await event_state(session, await events.event_by_code(session, code))


HostAction = Literal["start", "resume", "pause", "lock", "unlock", "next-phase", "next-image", "end"]


class HostActionConvertor(StringConvertor):
    """Only a host action matches the path, so POST to /{code}/players or /{code}/stats is a 405 (those paths take
    other methods), not a 422 for a wrong action."""

    regex = "|".join(get_args(HostAction))


register_url_convertor("host_action", HostActionConvertor())


@router.post("/{code}/{action:host_action}", response_model=EventState, responses=HOST_ERRORS)
async def host_action(
    code: str,
    action: HostAction,
    token: HostToken,
    session: SessionDep,
    service: ServiceDep,
    hub: HubDep,
) -> EventState:
    """Host controls. ``next-image`` shows the room the next shared image (together events)."""
    event = await events.event_by_code(session, code, for_update=True)
    events.check_host(event, token)
    await events.host_action(session, event=event, action=action, source=service)
    hub.publish(event.code, status=True)
    return await event_state(session, event)


@router.get("/{code}/players", response_model=list[EventPlayer], responses=HOST_ERRORS)
async def list_players(code: str, token: HostToken, session: SessionDep) -> list[EventPlayer]:
    event = await events.event_by_code(session, code)
    events.check_host(event, token)
    listed = await events.event_players(session, event)
    scores = await disclosure.shown_scores(session, listed)
    return [EventPlayer(player_id=p.id, nickname=p.nickname, score=scores[p.id], removed=p.removed) for p in listed]


@router.delete("/{code}/players/{player_id}", response_model=EventPlayer, responses=HOST_ERRORS)
async def remove_player(code: str, player_id: str, token: HostToken, session: SessionDep, hub: HubDep) -> EventPlayer:
    event = await events.event_by_code(session, code)
    events.check_host(event, token)
    player = await events.remove_player(session, event=event, player_id=player_id)
    hub.publish(event.code, status=True)  # the removed phone finds out
    score = await disclosure.shown_score(session, player)
    return EventPlayer(player_id=player.id, nickname=player.nickname, score=score, removed=player.removed)


def proportion_out(value: Proportion) -> ProportionOut:
    low, high = value.interval
    return ProportionOut(correct=value.successes, n=value.n, accuracy=value.value, ci95=(low, high))


@router.get("/{code}/stats", response_model=EventStats, responses={404: HOST_ERRORS[404]})
async def get_stats(code: str, session: SessionDep) -> EventStats:
    """Participation and humans vs machine on the event's answered rounds, with 95% Wilson intervals."""
    event = await events.event_by_code(session, code)
    summary = await event_stats.summary(session, event.id)
    by_eps = await event_stats.accuracy_by_eps(session, event.id)
    return EventStats(
        code=event.code,
        status=events.status_of(event),
        players=summary.players,
        answers=summary.answers,
        human=proportion_out(summary.human),
        model=proportion_out(summary.model),
        beat_machine=summary.beat_machine,
        by_eps=[
            EpsStats(
                eps=row.eps,
                eps_text=eps_as_grey_levels(row.eps),
                human=proportion_out(row.human),
                model=proportion_out(row.model),
            )
            for row in by_eps
        ],
        agreement=await fixed_set_agreement(session, event),
    )


async def fixed_set_agreement(session: AsyncSession, event: EventRecord) -> AgreementOut | None:
    if not events.event_settings(event).fixed_set:
        return None
    found = await agreement.event_agreement(session, event.id)
    return AgreementOut(
        items=[
            ItemAgreementOut(
                item_id=item.item_id,
                true_label=item.true_label,
                human=proportion_out(item.accuracy),
                modal_answer=item.modal_answer,
                modal_share=item.modal_share,
                pairwise_agreement=item.pairwise,
            )
            for item in found.items
        ],
        pairwise_agreement=found.pairwise,
        pairwise_agreement_ci95=found.pairwise_ci95,
        fleiss_kappa=found.kappa,
        fleiss_kappa_ci95=found.kappa_ci95,
    )


@router.get("/{code}/answers.{fmt}", response_class=StreamingResponse, responses={404: HOST_ERRORS[404]})
async def export_event_answers(
    request: Request,
    code: str,
    fmt: Literal["csv", "json", "jsonl"],
    session: SessionDep,
    download: bool = Query(False, description="Send Content-Disposition: attachment"),
) -> StreamingResponse:
    """The event's answers, one row each, in the same columns as the global export."""
    event = await events.event_by_code(session, code)  # a wrong code is a 404 before the first byte
    event_id, event_code = event.id, event.code
    await session.close()
    sessionmaker = request.app.state.database.sessionmaker

    def class_names_of(pack: str) -> tuple[str, ...]:
        return pack_class_names(pack)  # the text pack's too (app/stats/text.py)

    headers = {"Content-Disposition": f'attachment; filename="event-{event_code}-answers.{fmt}"'} if download else {}
    chunks = export.stream_answers(sessionmaker, fmt, class_names_of, event_id=event_id)
    return request.app.state.downloads.stream(chunks, media_type=export.MEDIA_TYPES[fmt], headers=headers)
