"""After (or during) an event: the report, its charts for slides and the QR code that joins it."""

from __future__ import annotations

import asyncio
import io

import segno
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import messages
from app.deps import CookiePlayer, ServiceDep, SessionDep
from app.errors import NotFound
from app.game import events
from app.stats import events as event_stats
from app.stats.leaderboard import leaderboard
from app.web.events.common import class_names, hosting
from app.web.room import join_link
from app.web.routes import render
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(dependencies=SHOWN_SCORE)

CHARTS = ("accuracy-by-eps", "confusions")


@router.get("/events/{code}/qr.svg", name="event_qr")
async def event_qr(request: Request, code: str, session: SessionDep) -> Response:
    """The join URL as a QR code, drawn here (segno), never fetched from a third party."""
    event = await events.event_by_code(session, code)
    qr = segno.make(join_link(request, "join_event_page", code=event.code), error="m")
    buffer = io.BytesIO()  # a standalone SVG document (with its xmlns), so that <img> can show it
    qr.save(buffer, kind="svg", scale=8, dark="#000", light="#fff", border=2, title=f"Join {event.code}")
    return Response(buffer.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=3600"})


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
