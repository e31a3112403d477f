"""JSON API of "fool it by hand" (issue #21) under /api/v1/paint: start a painting, send strokes (the server applies
them within the budget and the opponent answers the painted pixels), the result beside the machine's smallest
attack, the human adversaries' leaderboard, the stats by who made the image, and the dataset export."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.limits import fair_share_key
from app.api.schemas import Problem
from app.db.paint_tables import PaintingRecord
from app.deps import ApiPlayer, HubDep, ServiceDep, SessionDep
from app.errors import NotFound
from app.game import paint, paint_rounds
from app.messages import PAINT_NOT_FOUND
from app.ml.packs import get_pack  # torch-free: packs only read idx files
from app.ml.service.contracts import ModelService
from app.stats import painted

router = APIRouter(prefix="/api/v1", tags=["paint"])
PAINT_PREFIX = "/api/v1/paint"

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or invalid player token"},
    404: {"model": Problem, "description": "No such painting (or not yours)"},
    409: {"model": Problem, "description": "The painting is finished, or another stroke of it came first"},
    422: {"model": Problem, "description": "Invalid tool, budget or stroke (over the pencil's pixel budget too)"},
    503: {"model": Problem, "description": "Model service busy or down; retry after Retry-After seconds"},
}


class PaintCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: Literal["brush", "pencil"] = "brush"
    budget: int | None = Field(None, description="brush: 1-64 grey levels (L∞); pencil: 1-100 pixels (L0)")
    image_index: int | None = Field(None, ge=0, description="a test image the opponent gets right; default: random")
    opponent: str | None = Field(None, max_length=60)


class StrokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: Literal["brush", "pencil"]
    points: list[list[int]] = Field(description="[x, y] pixels, 0-based, the order the stroke passed them")
    amount: int | None = Field(None, description="brush: grey levels to add (+ lightens, - darkens)")
    value: int | None = Field(None, description="pencil: the grey value 0-255 to set")


class Guess(BaseModel):
    label: str
    probability: float


class PaintingOut(BaseModel):
    painting_id: str
    tool: str
    norm: str
    budget: int
    status: str = Field(description="painting, fooled or gave_up")
    true_label: str
    model_label: str
    top3: list[Guess]
    strokes: int
    pixels: int
    l2: float
    linf: float
    points: int
    clean_url: str
    painted_url: str
    strokes_url: str
    machine: dict[str, Any] | None = Field(None, description="the machine's smallest attack, once finished")
    comparison: str | None = None


def class_names(service: ModelService, record: PaintingRecord) -> tuple[str, ...]:
    return service.opponent_info(record.opponent).class_names


def top3(names: tuple[str, ...], probs: list[float]) -> list[Guess]:
    return [Guess(label=name, probability=round(p, 6)) for name, p in paint.top_answers(names, probs)]


def painting_out(service: ModelService, record: PaintingRecord, machine: dict[str, Any] | None = None) -> PaintingOut:
    names = class_names(service, record)
    change = paint.Change(record.pixels, record.l2, record.linf)
    finished = record.status != "painting"
    return PaintingOut(
        painting_id=record.id,
        tool=record.tool,
        norm=paint.NORM_OF_TOOL[record.tool],
        budget=record.budget,
        status=record.status,
        true_label=names[record.true_label],
        model_label=names[record.model_label],
        top3=top3(names, list(record.model_probs)),
        strokes=record.stroke_count,
        pixels=record.pixels,
        l2=round(record.l2, 6),
        linf=round(record.linf, 6),
        points=record.points,
        # Paths, not url_for: url_for walks every route of the app, 2 ms of a stroke's reply (benchmarks/paint_load.py).
        clean_url=f"{PAINT_PREFIX}/{record.id}/clean.png",
        painted_url=f"{PAINT_PREFIX}/{record.id}/painted.png",
        strokes_url=f"{PAINT_PREFIX}/{record.id}/strokes",
        machine=machine,
        comparison=paint.comparison(record.tool, change, machine) if finished and record.status == "fooled" else None,
    )


@router.post("/paint", status_code=201, response_model=PaintingOut, responses={k: ERRORS[k] for k in (401, 422, 503)})
async def start_painting(
    request: Request, player: ApiPlayer, session: SessionDep, service: ServiceDep, body: PaintCreate | None = None
) -> PaintingOut:
    """A new painting: an image the opponent gets right (the event's one for a workshop player)."""
    choice = body or PaintCreate()
    record = await paint_rounds.start_painting(
        session,
        service,
        player=player,
        tool=choice.tool,
        budget=choice.budget,
        image_index=choice.image_index,
        opponent=choice.opponent,
        client_key=fair_share_key(request),
    )
    return painting_out(service, record)


@router.get("/paint/{painting_id}", response_model=PaintingOut, responses={k: ERRORS[k] for k in (401, 404, 503)})
async def show_painting(
    request: Request, painting_id: str, player: ApiPlayer, session: SessionDep, service: ServiceDep
) -> PaintingOut:
    """The painting; once it fooled the opponent, with the machine's smallest attack on the same image beside it
    (waits for it the first time: computed once per image)."""
    record = await paint_rounds.painting_of(session, player=player, painting_id=painting_id)
    machine = None
    if record.status == "fooled":
        machine = paint_rounds.best_as_dict(await paint_rounds.machine_best(session, service, record))
    return painting_out(service, record, machine)


@router.post(
    "/paint/{painting_id}/strokes",
    name="paint_stroke",
    response_model=PaintingOut,
    responses={k: ERRORS[k] for k in (401, 404, 409, 422, 503)},
)
async def paint_stroke(
    request: Request,
    painting_id: str,
    stroke: StrokeIn,
    player: ApiPlayer,
    session: SessionDep,
    service: ServiceDep,
    hub: HubDep,
) -> PaintingOut:
    """One stroke, applied on the server within the budget; the reply is the opponent's answer on the painted
    pixels (top 3). ``status`` turns ``fooled`` when the answer is no longer the true label."""
    outcome = await paint_rounds.add_stroke(
        session,
        service,
        player=player,
        painting_id=painting_id,
        stroke=stroke.model_dump(exclude_none=True),
        client_key=fair_share_key(request),
    )
    if outcome.event_id is not None:
        await paint_rounds.publish_to_room(session, hub, outcome.event_id)
    return painting_out(service, outcome.record)


@router.post(
    "/paint/{painting_id}/give-up", response_model=PaintingOut, responses={k: ERRORS[k] for k in (401, 404, 409)}
)
async def give_up(
    request: Request, painting_id: str, player: ApiPlayer, session: SessionDep, service: ServiceDep
) -> PaintingOut:
    record = await paint_rounds.give_up(session, player=player, painting_id=painting_id)
    return painting_out(service, record)


@router.get("/paint/{painting_id}/{kind}.png", name="painting_image", responses={404: ERRORS[404]})
async def painting_image(painting_id: str, kind: str, session: SessionDep) -> Response:
    """The clean or the painted image, or (once stored) the machine's smallest attack on the same image; the
    painting's id (128 random bits) is the capability."""
    record = await paint_rounds.painting_by_id(session, painting_id)
    if record is None or kind not in ("clean", "painted", "machine"):
        raise NotFound(PAINT_NOT_FOUND)
    if kind == "machine":
        best = await paint_rounds.stored_best(
            session, record.opponent, record.image_index, paint.NORM_OF_TOOL[record.tool]
        )
        if best is None:
            raise NotFound(PAINT_NOT_FOUND)
        data = best.adversarial_png
    else:
        data = record.clean_png if kind == "clean" else record.painted_png
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


class AdversaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    rank: int
    player_id: str
    nickname: str
    points: int
    fooled: int
    paintings: int
    fewest_pixels: int | None
    smallest_l2: float | None


@router.get("/paint-leaderboard", response_model=list[AdversaryOut])
async def adversaries(session: SessionDep, limit: int = Query(20, ge=1, le=100)) -> list[AdversaryOut]:
    """The human adversaries: points of their winning paintings (smaller changes score more)."""
    return [AdversaryOut.model_validate(row) for row in await painted.adversaries(session, limit=limit)]


@router.get("/stats/painted")
async def stats_by_maker(session: SessionDep) -> dict[str, Any]:
    """People's and the machine's accuracy on adversarial images made by a person against made by an attack, with
    95% Wilson intervals, overall and on the people who saw both kinds."""
    return await painted.by_maker(session)


@router.get("/paint-export", response_class=StreamingResponse)
async def export_paintings(
    request: Request, format: Literal["json", "csv"] = "json", download: bool = False
) -> StreamingResponse:
    """Every painted image: strokes, the model's answers along the way, clean and painted PNGs (base64); ids as
    stored. Streamed in keyset pages, in one of the few download slots the answer export uses (else 503)."""
    sessionmaker = request.app.state.database.sessionmaker
    body = painted.stream_paintings(sessionmaker, format, lambda pack: get_pack(pack).class_names)
    headers = {"Content-Disposition": f'attachment; filename="paintings.{format}"'} if download else {}
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    return request.app.state.downloads.stream(body, media_type=media, headers=headers)


class SeenRound(BaseModel):
    round_id: str
    play_url: str


@router.post("/paint-rounds", status_code=201, response_model=SeenRound, responses={k: ERRORS[k] for k in (401, 404)})
async def see_painted(request: Request, player: ApiPlayer, session: SessionDep) -> SeenRound:
    """ "Can you still see it?": a round showing someone else's painted image; answer it like any round."""
    record = await paint_rounds.serve_painted_round(session, player=player)
    return SeenRound(round_id=record.id, play_url=f"/play/rounds/{record.id}")
