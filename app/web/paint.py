"""Fool it by hand (issue #21), the pages: choose a tool, the painting board (static/paint.js sends each stroke to
the JSON API, /api/v1/paint, and shows the opponent's top 3 live), "can you still see it?", the leaderboard of human
adversaries, and a workshop's big screen of the room's best edits (live over the event's SSE stream)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response, StreamingResponse
from jinja2_fragments import render_block

from app import live
from app.api.limits import fair_share_key
from app.deps import CookiePlayer, HubDep, ServiceDep, SessionDep, check_csrf
from app.errors import ArenaError
from app.game import events, paint, paint_rounds
from app.stats import painted
from app.web.routes import render, see_other
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(include_in_schema=False, dependencies=SHOWN_SCORE)  # the header's score, as the reveal rule shows it

CsrfField = Annotated[str | None, Form(alias="csrf_token")]
SCREEN_TEMPLATE = "pages/paint_screen.html"
SCREEN_BLOCKS = ("paint_progress", "paint_best")


def start_context(player: Any, event: Any, image: int | None, error: str | None = None) -> dict[str, Any]:
    return {"player": player, "event": event, "budgets": paint.DEFAULT_BUDGET, "image": image, "error": error}


@router.get("/paint", name="paint_page")
async def paint_page(
    request: Request, player: CookiePlayer, session: SessionDep, image: Annotated[int | None, Query(ge=0)] = None
) -> Response:
    """Choose a tool; ``?image=N`` paints test image N again (the result page links to it)."""
    if player is None:
        return see_other("/")
    event = await events.event_of_player(session, player)
    return render(request, "pages/paint_start.html", start_context(player, event, image))


@router.post("/paint")
async def start_painting(
    request: Request,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    tool: Annotated[str, Form(max_length=10)] = "brush",
    image_index: Annotated[int | None, Form(ge=0)] = None,
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    if player is None:
        return see_other("/")
    record = await paint_rounds.start_painting(
        session, service, player=player, tool=tool, image_index=image_index, client_key=fair_share_key(request)
    )
    return see_other(f"/paint/{record.id}")


@router.get("/paint/leaderboard", name="paint_leaderboard")
async def paint_leaderboard(request: Request, player: CookiePlayer, session: SessionDep) -> Response:
    board = await painted.adversaries(session, limit=50)
    stats = await painted.by_maker(session)
    return render(request, "pages/paint_leaderboard.html", {"player": player, "board": board, "stats": stats})


@router.post("/paint/see")
async def see_painted(
    request: Request, player: CookiePlayer, session: SessionDep, csrf_token_field: CsrfField = None
) -> Response:
    """ "Can you still see it?": someone else's painted image as a round of the play page."""
    check_csrf(request, csrf_token_field)
    if player is None:
        return see_other("/")
    try:
        record = await paint_rounds.serve_painted_round(session, player=player)
    except ArenaError as error:
        context = start_context(player, None, None, error.message)
        return render(request, "pages/paint_start.html", context, status_code=error.status_code)
    return see_other(f"/play/rounds/{record.id}")


@router.get("/paint/{painting_id}", name="paint_board")
async def paint_board(
    request: Request, painting_id: str, player: CookiePlayer, session: SessionDep, service: ServiceDep
) -> Response:
    if player is None:
        return see_other("/")
    record = await paint_rounds.painting_of(session, player=player, painting_id=painting_id)
    info = service.opponent_info(record.opponent)
    height, width = info.image_shape[0], info.image_shape[1]
    context = {
        "player": player,
        "painting": record,
        "class_names": info.class_names,
        "true_name": info.class_names[record.true_label],
        "norm": paint.NORM_OF_TOOL[record.tool],
        "width": width,
        "height": height,
        "scale": max(1, 280 // max(width, height)),
        "top3": paint.top_answers(info.class_names, list(record.model_probs)),
        "again": f"/paint?image={record.image_index}" if record.event_id is None else "/paint",
    }
    return render(request, "pages/paint_board.html", context)


# -- the workshop's big screen -------------------------------------------------------------------------------------


async def screen_context(session: Any, event: Any, service: Any) -> dict[str, Any]:
    best = await painted.best_edits(session, event.id)
    names = service.opponent_info(service.opponent_names()[0]).class_names
    total, fooled = await painted.room_progress(session, event.id)
    return {
        "event": event,
        "best": [
            {
                "record": record,
                "nickname": nickname,
                "answer": names[record.model_label],
                "truth": names[record.true_label],
            }
            for record, nickname in best
        ],
        "total": total,
        "fooled": fooled,
        "board": await painted.adversaries(session, limit=8, event_id=event.id),
    }


@router.get("/events/{code}/paint-screen", name="paint_screen")
async def paint_screen(request: Request, code: str, session: SessionDep, service: ServiceDep) -> Response:
    event = await events.event_by_code(session, code)
    context = await screen_context(session, event, service)
    context["player"] = None
    return render(request, SCREEN_TEMPLATE, context)


@router.get("/events/{code}/paint-stream", name="paint_stream")
async def paint_stream(
    request: Request, code: str, session: SessionDep, service: ServiceDep, hub: HubDep
) -> StreamingResponse:
    """The room's best edits, live: the event's hub wakes this stream on every answered stroke (app/live.py)."""
    event = await events.event_by_code(session, code)
    event_id, event_code = event.id, event.code
    await session.close()
    sessionmaker = request.app.state.database.sessionmaker
    templates = request.app.state.templates

    async def build() -> live.Snapshot:
        async with sessionmaker() as snap_session:
            fresh = await events.event_by_id(snap_session, event_id)
            context = await screen_context(snap_session, fresh, service)
        context.update(request=request, player=None, fragment=True, csrf_token="")
        rendered = tuple(
            (block, "".join(render_block(templates.env, SCREEN_TEMPLATE, block, context)).strip())
            for block in SCREEN_BLOCKS
        )
        return live.Snapshot(key=str(hash(rendered)), events=rendered)

    body = live.stream(
        hub,
        paint_rounds.paint_channel(event_code),
        kind="screen",
        build=build,
        is_disconnected=request.is_disconnected,
        max_duration_s=live.MAX_STREAM_S,
    )
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)
