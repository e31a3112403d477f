"""The parts of a round's JSON reply that image and text rounds share: the reveal's common fields (RevealOut) and
the acknowledgement sent instead while a room's countdown still hides the truth. The game's two views differ in
everything else, so these read them through the few attributes both have."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from fastapi import Request

from app.api.schemas import AnswerLocked, Confidence
from app.db.tables import AnswerRecord, RoundRecord


class ScoredReveal(Protocol):
    """What app.game.reveal.Reveal and app.game.text_play.TextReveal both say about an answer."""

    @property
    def round_id(self) -> str: ...
    @property
    def correct(self) -> bool: ...
    @property
    def player_label(self) -> str: ...
    @property
    def true_label(self) -> str: ...
    @property
    def model_label(self) -> str: ...
    @property
    def model_confidence(self) -> float: ...
    @property
    def model_correct(self) -> bool: ...
    @property
    def top3(self) -> tuple[tuple[str, float], ...]: ...
    @property
    def clean_label(self) -> str: ...
    @property
    def beat_machine(self) -> bool: ...
    @property
    def points(self) -> int: ...


class AnsweredView(Protocol):
    """What app.game.play.RoundView and app.game.text_play.TextView both hold once a player has answered."""

    @property
    def record(self) -> RoundRecord: ...
    @property
    def class_names(self) -> tuple[str, ...]: ...
    @property
    def answer(self) -> AnswerRecord | None: ...
    @property
    def truth_hidden_until(self) -> datetime | None: ...


def reveal_fields(reveal: ScoredReveal, *, score: int, streak: int) -> dict[str, Any]:
    """RevealOut's fields; ``score`` is the player's score as the reveal rule shows it (disclosure.shown_score)."""
    return {
        "round_id": reveal.round_id,
        "correct": reveal.correct,
        "choice": reveal.player_label,
        "true_label": reveal.true_label,
        "model_label": reveal.model_label,
        "model_confidence": reveal.model_confidence,
        "model_correct": reveal.model_correct,
        "model_top3": [Confidence(label=label, probability=p) for label, p in reveal.top3],
        "clean_model_label": reveal.clean_label,
        "beat_machine": reveal.beat_machine,
        "points": reveal.points,
        "score": score,
        "streak": streak,
    }


def answer_locked(request: Request, view: AnsweredView, reveal_route: str) -> AnswerLocked | None:
    """The acknowledgement of an answer whose truth a room's countdown still hides (its reveal comes later from
    ``reveal_route``), or None when the reveal can be sent now."""
    if view.truth_hidden_until is None or view.answer is None:
        return None
    return AnswerLocked(
        round_id=view.record.id,
        choice=view.class_names[view.answer.choice],
        reveal_at=view.truth_hidden_until.isoformat(),
        reveal_url=str(request.url_for(reveal_route, round_id=view.record.id)),
    )
