"""Text rounds over JSON (issue #18): the same operations as the text play page (app/game/text_play.py), with the
same reveal rule. Thin routes: parse, call the game, shape the reply."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from app import messages
from app.api.limits import fair_share_key
from app.api.reveals import answer_locked, reveal_fields
from app.api.routes import errors
from app.api.schemas import AnswerLocked
from app.api.text_schemas import (
    ChangedWord,
    TextAnswerIn,
    TextAnswerOut,
    TextOpponentOut,
    TextRoundCreate,
    TextRoundCreated,
    TextStatsCell,
)
from app.db.tables import PlayerRecord
from app.deps import ApiPlayer, HubDep, ServiceDep, SessionDep, SettingsDep
from app.errors import Conflict
from app.game import disclosure, events, text, text_play
from app.game.catalogue import Catalogue
from app.stats.text import text_table

router = APIRouter(prefix="/api/v1", tags=["text"])


@router.get("/text/opponents", response_model=list[TextOpponentOut], responses=errors(503))
async def text_opponents(service: ServiceDep) -> list[TextOpponentOut]:
    """The text opponents the model service plays, the default first (empty when it has none)."""
    infos = await Catalogue(service).text_opponents()
    return [
        TextOpponentOut(
            name=info.name,
            pack=info.pack,
            class_names=list(info.class_names),
            clean_accuracy=info.clean_accuracy,
            test_size=info.test_size,
            description=info.description,
        )
        for info in infos
    ]


@router.post(
    "/text/rounds",
    status_code=201,
    response_model=TextRoundCreated,
    responses=errors(401, 409, 422, 503),
)
async def create_text_round(
    request: Request,
    player: ApiPlayer,
    session: SessionDep,
    service: ServiceDep,
    settings: SettingsDep,
    body: TextRoundCreate | None = None,
) -> TextRoundCreated:
    choice = body or TextRoundCreate()
    catalogue = Catalogue(service)
    record = await text_play.new_text_round(
        session,
        catalogue,
        player=player,
        settings=settings,
        opponent=choice.opponent,
        attack=choice.attack,
        client_key=fair_share_key(request),
    )
    if not text.is_text(record):  # the player's pending round is an image round: answer that first
        raise Conflict(messages.IMAGE_ROUND_PENDING)
    view = await text_play.text_view(session, catalogue, record=record)
    return TextRoundCreated(
        round_id=record.id,
        shown_text=record.shown_text or "",
        choices=[name for _, name in view.choices],
        opponent=record.opponent,
        attack=record.attack,
        budget=record.eps,
        answer_url=str(request.url_for("answer_text_round_api", round_id=record.id)),
    )


def text_answer_out(view: text_play.TextView, player: PlayerRecord, score: int) -> TextAnswerOut:
    record, reveal = view.record, view.reveal
    if reveal is None or view.answer is None:
        raise Conflict(messages.REVEAL_NOT_READY)
    originals = [p.text for p in reveal.original if p.changed]
    shown = [p.text for p in reveal.shown if p.changed]
    positions = sorted(record.changed_words or [])
    return TextAnswerOut(
        **reveal_fields(reveal, score=score, streak=player.streak),
        original_text=record.original_text or "",
        shown_text=record.shown_text or "",
        changed_words=[
            ChangedWord(position=p, original=o, shown=s) for p, o, s in zip(positions, originals, shown, strict=True)
        ],
        n_words=reveal.n_words,
        budget=reveal.budget,
        similarity=reveal.similarity,
        queries=reveal.queries,
        opponent=reveal.opponent,
        attack=reveal.attack,
        surrogate=reveal.surrogate,
        condition=reveal.condition,
    )


@router.post(
    "/text/rounds/{round_id}/answer",
    name="answer_text_round_api",
    response_model=TextAnswerOut | AnswerLocked,
    responses=errors(401, 404, 409, 422, 503),
)
async def answer_text_round(
    request: Request,
    round_id: str,
    body: TextAnswerIn,
    player: ApiPlayer,
    session: SessionDep,
    service: ServiceDep,
    hub: HubDep,
) -> TextAnswerOut | AnswerLocked:
    """The one answer to a text round; the reveal, or while a room's countdown runs only the acknowledgement."""
    view = await text_play.answer_text(
        session, Catalogue(service), player=player, round_id=round_id, choice=body.choice
    )
    if view.event_code is not None:
        hub.publish(view.event_code)
    locked = answer_locked(request, view, "get_text_round")
    if locked is not None:
        return locked
    return text_answer_out(view, player, await disclosure.shown_score(session, player))


@router.get(
    "/text/rounds/{round_id}",
    name="get_text_round",
    response_model=TextAnswerOut,
    responses=errors(401, 404, 409, 503),
)
async def get_text_round(round_id: str, player: ApiPlayer, session: SessionDep, service: ServiceDep) -> TextAnswerOut:
    """The reveal of an answered text round, to show it again; 409 while the reveal rule hides it."""
    view = await text_play.revealed_text(session, Catalogue(service), player=player, round_id=round_id)
    return text_answer_out(view, player, await disclosure.shown_score(session, player))


@router.get("/stats/text", response_model=list[TextStatsCell], responses=errors(404))
async def text_stats(
    session: SessionDep, event: str | None = Query(None, max_length=20, description="Only this event (join code)")
) -> list[TextStatsCell]:
    """People's and the machine's accuracy on text rounds by opponent, condition and budget (share of words), with
    95% Wilson intervals; settled answers only (a together text still counting down is not counted)."""
    event_id = None if event is None else (await events.event_by_code(session, event)).id
    return [TextStatsCell.model_validate(cell.as_dict()) for cell in await text_table(session, event_id=event_id)]
