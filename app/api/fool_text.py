"""JSON API for "fool the machine yourself" (app/game/fool_text): rounds, live checks, submissions, validation rounds
and their answers, under /api/v1/fool/text. The same rules as the pages: the server keeps the original text and
re-checks every edit; a validation round shows no truth until its one answer is in."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.api.limits import fair_share_key
from app.api.openapi import problem_responses
from app.db.tables import TextEditRecord
from app.deps import ApiPlayer, ServiceDep, SessionDep, SettingsDep
from app.game.fool_text import edits, rules, texts, validation
from app.game.fool_text.edits import EditCheck
from app.game.fool_text.texts import Answer
from app.game.fool_text.validation import ValidationView
from app.ml.service.text_edit_contracts import MAX_TEXT_CHARS
from app.stats import human_texts

router = APIRouter(prefix="/api/v1/fool/text", tags=["fool-text"])


class LabelProbability(BaseModel):
    label: str
    probability: float


class ModelAnswer(BaseModel):
    label: str = Field(description="The opponent's answer")
    confidence: float
    top3: list[LabelProbability]


class FoolRoundIn(BaseModel):
    opponent: str | None = Field(None, max_length=60, description="A text opponent; default definitions-tfidf")


class EditIn(BaseModel):
    edited: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="The edited definition")


class FoolRoundOut(BaseModel):
    edit_id: str
    status: str = Field(description="open, won, lost or skipped")
    opponent: str
    original: str
    category: str = Field(description="What the original defines (the opponent answers it too)")
    class_names: list[str]
    before: ModelAnswer
    n_words: int
    budget: float = Field(description="Share of the original's words that may change")
    allowed_changes: int
    edited: str | None
    after: ModelAnswer | None
    words_changed: int | None
    similarity: float | None
    similarity_floor: float | None


class CheckOut(BaseModel):
    edited: str = Field(description="The edit as the server read it (white space collapsed)")
    answer: ModelAnswer
    fooled: bool = Field(description="The answer differs from the answer on the original")
    words_changed: int
    allowed_changes: int
    share_changed: float
    budget: float
    separators_kept: bool
    similarity: float
    similarity_floor: float
    problems: list[str] = Field(description="The rules the edit breaks, in words")
    wins: bool = Field(description="Submitting this edit would win the round")


class SubmitOut(BaseModel):
    round: FoolRoundOut
    check: CheckOut


class ValidationOut(BaseModel):
    validation_id: str
    text: str = Field(description="A human-written text that fooled the machine")
    class_names: list[str]
    answered: bool
    choice: int | None
    agrees: bool | None = Field(description="The answer names the original's category (null until answered)")
    category: str | None = Field(description="The original's category (null until answered)")
    original: str | None = Field(description="The original definition (null until answered)")
    model_before: str | None = Field(description="The machine's answer on the original (null until answered)")
    model_after: str | None = Field(description="The machine's answer on this text (null until answered)")


class ValidationAnswerIn(BaseModel):
    choice: int = Field(ge=0, le=len(texts.CLASS_NAMES) - 1, description="Index into class_names")


def model_answer(answer: Answer) -> ModelAnswer:
    names = texts.CLASS_NAMES
    return ModelAnswer(
        label=names[answer.label],
        confidence=answer.confidence,
        top3=[LabelProbability(label=names[i], probability=p) for i, p in answer.top(3)],
    )


def round_out(record: TextEditRecord) -> FoolRoundOut:
    after = edits.after_answer(record)
    return FoolRoundOut(
        edit_id=record.id,
        status=record.status,
        opponent=record.opponent,
        original=record.original,
        category=texts.CLASS_NAMES[record.true_label],
        class_names=list(texts.CLASS_NAMES),
        before=model_answer(edits.before_answer(record)),
        n_words=record.n_words,
        budget=record.budget,
        allowed_changes=rules.max_changes(record.n_words, record.budget),
        edited=record.edited,
        after=model_answer(after) if after is not None else None,
        words_changed=record.words_changed,
        similarity=record.similarity,
        similarity_floor=record.similarity_floor,
    )


def check_out(verdict: EditCheck) -> CheckOut:
    m = verdict.measure
    return CheckOut(
        edited=verdict.edited,
        answer=model_answer(verdict.answer),
        fooled=verdict.fooled,
        words_changed=m.changed,
        allowed_changes=m.allowed,
        share_changed=m.share,
        budget=m.budget,
        separators_kept=m.separators_kept,
        similarity=verdict.similarity,
        similarity_floor=verdict.floor,
        problems=list(verdict.problems),
        wins=verdict.wins,
    )


def validation_out(shown: ValidationView) -> ValidationOut:
    names, edit, record = shown.class_names, shown.edit, shown.record
    return ValidationOut(
        validation_id=record.id,
        text=shown.text,
        class_names=list(names),
        answered=shown.answered,
        choice=record.choice if edit is not None else None,
        agrees=record.agrees if edit is not None else None,
        category=names[edit.true_label] if edit is not None else None,
        original=edit.original if edit is not None else None,
        model_before=names[edit.before_label] if edit is not None else None,
        model_after=names[edit.after_label] if edit is not None and edit.after_label is not None else None,
    )


PLAYER = {401: "Missing or invalid player token"}
MODEL = {503: "Model service busy or down (or without text opponents); retry after Retry-After seconds"}


@router.post(
    "/rounds",
    status_code=201,
    response_model=FoolRoundOut,
    responses=problem_responses({**PLAYER, 422: "Unknown text opponent", **MODEL}),
)
async def start_round(
    request: Request,
    player: ApiPlayer,
    session: SessionDep,
    service: ServiceDep,
    settings: SettingsDep,
    body: FoolRoundIn | None = None,
) -> FoolRoundOut:
    """The player's open round, or a new one on a definition the opponent classifies correctly."""
    opponent = body.opponent if body is not None else None
    record = await edits.start_edit(
        session,
        service,
        player=player,
        opponent=opponent,
        budget=settings.fool_text_budget,
        client_key=fair_share_key(request),
    )
    return round_out(record)


@router.get(
    "/rounds/{edit_id}",
    response_model=FoolRoundOut,
    responses=problem_responses({**PLAYER, 404: "No such round (or not yours)"}),
)
async def get_round(edit_id: str, player: ApiPlayer, session: SessionDep) -> FoolRoundOut:
    return round_out(await edits.player_edit(session, player=player, edit_id=edit_id))


EDIT_ERRORS = {**PLAYER, 404: "No such round (or not yours)", 409: "The round is over", **MODEL}


@router.post(
    "/rounds/{edit_id}/check",
    response_model=CheckOut,
    responses=problem_responses({**EDIT_ERRORS, 422: "Not an edit (blank or too long)"}),
)
async def check_edit(
    request: Request, edit_id: str, body: EditIn, player: ApiPlayer, session: SessionDep, service: ServiceDep
) -> CheckOut:
    """The server's verdict on an edit, as the editor shows it live: the opponent's answer and top 3, words changed
    against the budget, similarity against the floor, the rules broken. Nothing is stored."""
    _, verdict = await edits.check_edit(
        session, service, player=player, edit_id=edit_id, edited=body.edited, client_key=fair_share_key(request)
    )
    return check_out(verdict)


@router.post(
    "/rounds/{edit_id}/submit",
    response_model=SubmitOut,
    responses=problem_responses({**EDIT_ERRORS, 422: "The edit breaks a rule (the round stays open)"}),
)
async def submit_edit(
    request: Request, edit_id: str, body: EditIn, player: ApiPlayer, session: SessionDep, service: ServiceDep
) -> SubmitOut:
    """Re-check everything and close the round: won when the opponent's answer changed within the rules."""
    record, verdict = await edits.submit_edit(
        session, service, player=player, edit_id=edit_id, edited=body.edited, client_key=fair_share_key(request)
    )
    return SubmitOut(round=round_out(record), check=check_out(verdict))


@router.post(
    "/validations",
    status_code=201,
    response_model=ValidationOut,
    responses=problem_responses({**PLAYER, 404: "No text of someone else is waiting to be read"}),
)
async def start_validation(player: ApiPlayer, session: SessionDep) -> ValidationOut:
    """The player's unanswered validation round, or a new one; its truth is withheld until answered."""
    return validation_out(await validation.start_validation(session, player=player))


@router.get(
    "/validations/{validation_id}",
    response_model=ValidationOut,
    responses=problem_responses({**PLAYER, 404: "No such validation round (or not yours)"}),
)
async def get_validation(validation_id: str, player: ApiPlayer, session: SessionDep) -> ValidationOut:
    return validation_out(await validation.player_validation(session, player=player, validation_id=validation_id))


@router.post(
    "/validations/{validation_id}/answer",
    response_model=ValidationOut,
    responses=problem_responses(
        {**PLAYER, 404: "No such validation round (or not yours)", 409: "Already answered", 422: "Invalid choice"}
    ),
)
async def answer_validation(
    validation_id: str, body: ValidationAnswerIn, player: ApiPlayer, session: SessionDep
) -> ValidationOut:
    """The one answer of a validation round; the reply shows its truth."""
    shown = await validation.answer_validation(session, player=player, validation_id=validation_id, choice=body.choice)
    return validation_out(shown)


exports_router = APIRouter(prefix="/api/v1/exports", tags=["exports"])


@exports_router.get(
    "/human-texts", response_class=StreamingResponse, responses=problem_responses({503: "Too many exports at once"})
)
async def export_human_texts(
    request: Request,
    format: Literal["json", "csv"] = Query("json", description="json (an array) or csv (nested values as JSON)"),
    download: bool = Query(False, description="Send Content-Disposition: attachment"),
) -> StreamingResponse:
    """Every submitted human-written text (fool the machine yourself), oldest first, with the opponent's answers and
    probabilities before and after, words changed, similarity and the validations, streamed in pages like the
    answer export (a few downloads at once, then 503 with Retry-After)."""
    sessionmaker = request.app.state.database.sessionmaker
    headers = {"Content-Disposition": f'attachment; filename="human-texts.{format}"'} if download else {}
    chunks = human_texts.stream_human_texts(sessionmaker, format)
    return request.app.state.downloads.stream(chunks, media_type=human_texts.MEDIA_TYPES[format], headers=headers)
