"""The parts of a round's JSON reply that image and text rounds share: the reveal's common fields (RevealOut) and
the acknowledgement sent instead while a room's countdown still hides the truth."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from app.api.schemas import AnswerLocked, Confidence
from app.game.play import RoundView
from app.game.reveal import Reveal
from app.game.text_play import TextReveal, TextView


def reveal_fields(reveal: Reveal | TextReveal, *, score: int, streak: int) -> dict[str, Any]:
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


def answer_locked(request: Request, view: RoundView | TextView, reveal_route: str) -> AnswerLocked | None:
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
