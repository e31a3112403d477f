"""The "why the machine fails" page of one answered round (issue #7): SmoothGrad saliency for the clean and the
shown image, the decision-boundary slice and the linearity picture, each with a caption in plain words. Only the
round's own player sees it, and only once the answer may be revealed (404 otherwise, like the original image).
The numbers come from the model service (app/ml/measure/explain.py); charts are drawn per request and nothing is
cached."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import messages
from app.api.limits import fair_share_key
from app.deps import CookiePlayer, ServiceDep, SessionDep
from app.errors import NotFound
from app.stats import explain as explain_stats
from app.stats.plots.explain import CHART_FORMATS, EXPLAIN_KINDS, explain_chart
from app.web.routes import render, see_other
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(include_in_schema=False, dependencies=SHOWN_SCORE)


def _draw(record: Any, result: Any, class_names: tuple[str, ...], kind: str, fmt: str = "png") -> bytes:
    """One chart; runs in a worker thread (matplotlib is imported on the first chart, not at start-up)."""
    clean, shown = explain_stats.images_of(record)
    eps, norm = record.eps, record.norm or "linf"
    return explain_chart(kind, result, class_names=class_names, clean=clean, shown=shown, eps=eps, norm=norm, fmt=fmt)


def _draw_all(record: Any, result: Any, class_names: tuple[str, ...]) -> dict[str, str]:
    """The charts as PNG data URLs (one model-service call per page view instead of one per chart); without
    gradients only the slice, as the page shows only that."""
    kinds = EXPLAIN_KINDS if result.differentiable else ("slice",)
    return {
        kind: "data:image/png;base64," + base64.b64encode(_draw(record, result, class_names, kind)).decode("ascii")
        for kind in kinds
    }


@router.get("/play/rounds/{round_id}/explain", name="explain_page")
async def explain_page(
    request: Request, round_id: str, player: CookiePlayer, session: SessionDep, service: ServiceDep
) -> Response:
    if player is None:
        return see_other("/")
    record, result = await explain_stats.explain_round(
        session, service, player=player, round_id=round_id, client_key=fair_share_key(request)
    )
    class_names = tuple(service.opponent_info(record.opponent).class_names)
    charts = await asyncio.to_thread(_draw_all, record, result, class_names)
    context = {
        "player": player,
        "round": record,
        "result": result,
        "names": class_names,
        "charts": charts,
        "kinds": EXPLAIN_KINDS,
        "r2": result.linearity_r2,
    }
    response = render(request, "pages/explain.html", context)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@router.get("/play/rounds/{round_id}/explain/{kind}.{fmt}", name="explain_chart")
async def explain_chart_file(
    request: Request,
    round_id: str,
    kind: str,
    fmt: str,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
) -> Response:
    """One chart as PNG or SVG, for download; the same rules as the page."""
    if kind not in EXPLAIN_KINDS or fmt not in CHART_FORMATS or player is None:
        raise NotFound(messages.ROUND_NOT_FOUND)
    record, result = await explain_stats.explain_round(
        session, service, player=player, round_id=round_id, client_key=fair_share_key(request)
    )
    class_names = tuple(service.opponent_info(record.opponent).class_names)

    data = await asyncio.to_thread(_draw, record, result, class_names, kind, fmt)
    return Response(data, media_type=CHART_FORMATS[fmt], headers={"Cache-Control": "private, no-store"})
