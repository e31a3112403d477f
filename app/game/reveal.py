"""The reveal: what a player is shown once they have answered (the truth, both answers, the model's confidence,
how the image was attacked and what the defense did), in display terms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.db.tables import AnswerRecord, RoundRecord
from app.game import conditions
from app.game.difficulty import eps_as_grey_levels


def budget_text(norm: str, eps: float, params: Mapping[str, Any]) -> str:
    """The budget in words people can picture."""
    if norm == "l2":
        return f"L2 size {eps:.2f}"
    if norm == "l0":
        pixels = params.get("pixels")
        return f"{pixels} pixels" if pixels else "a few pixels"
    return eps_as_grey_levels(eps)


@dataclass(frozen=True)
class Reveal:
    """Everything the reveal shows, in display terms."""

    round_id: str
    class_names: tuple[str, ...]
    true_label: str
    player_label: str
    model_label: str
    clean_label: str
    correct: bool
    model_correct: bool
    beat_machine: bool
    model_confidence: float
    top3: tuple[tuple[str, float], ...]
    eps: float
    eps_text: str
    points: int
    response_ms: int
    opponent: str
    attack: str
    norm: str = "linf"
    threat_model: str = "white-box"
    attack_explanation: str = ""
    queries: int | None = None
    query_budget: int | None = None
    surrogate: str | None = None
    l2: float | None = None
    linf: float = 0.0
    condition: str = "adversarial"
    condition_text: str = ""
    task: str = "classify"
    defense_verdict: str | None = None
    defense_text: str = ""
    certified_radius: float | None = None


def build_reveal(
    record: RoundRecord, answer: AnswerRecord, class_names: tuple[str, ...], attack: Mapping[str, Any] | None = None
) -> Reveal:
    """``attack`` is the attack's catalogue entry (threat model, explanation), when the caller has it."""
    ranked = sorted(range(len(record.model_probs)), key=lambda i: record.model_probs[i], reverse=True)[:3]
    attack = attack or {}
    return Reveal(
        round_id=record.id,
        class_names=class_names,
        true_label=class_names[record.true_label],
        player_label=class_names[answer.choice],
        model_label=class_names[record.model_label],
        clean_label=class_names[record.clean_label],
        correct=answer.correct,
        model_correct=answer.model_correct,
        beat_machine=answer.correct and not answer.model_correct and record.task != "guess_machine",
        model_confidence=record.model_confidence,
        top3=tuple((class_names[i], float(record.model_probs[i])) for i in ranked),
        eps=record.eps,
        eps_text=budget_text(record.norm or "linf", record.eps, record.attack_params or {}),
        points=answer.points,
        response_ms=answer.response_ms,
        opponent=record.opponent,
        attack=record.attack,
        norm=record.norm or "linf",
        threat_model=str(attack.get("threat_model", "white-box")),
        attack_explanation=str(attack.get("explanation", "")),
        queries=record.queries,
        query_budget=record.query_budget,
        surrogate=record.surrogate,
        l2=record.l2,
        linf=record.linf,
        condition=record.condition or "adversarial",
        condition_text=conditions.DESCRIPTIONS.get(record.condition or "adversarial", ""),
        task=record.task or "classify",
        defense_verdict=record.defense_verdict,
        defense_text=defense_text(record.defense_verdict, record.certified_radius, record.linf),
        certified_radius=record.certified_radius,
    )


# What each defense verdict (app/ml/defenses/outcome.py) means, said to the player after the answer.
DEFENSE_TEXTS = {
    "rejected": "The defense's detector flagged this image as adversarial: a deployed system would have refused "
    "it, whatever the network answered.",
    "reformed": "The defense cleaned the image up before the network saw it, and that saved it: the network alone "
    "would have been fooled by this image.",
    "certified": "Certified: the model proves that no change of at most {radius}/255 per pixel can fool it on this "
    "image, and this one changed pixels by at most {linf}/255.",
    "withstood": "The defense held: the attack did not fool it.",
    "fooled": "The attack got through the defense.",
}


def defense_text(verdict: str | None, radius: float | None, linf: float) -> str:
    """The reveal's sentence for a defense verdict, with a certified model's radius next to the change used."""
    if verdict is None:
        return ""
    text = DEFENSE_TEXTS.get(verdict, f"Defense verdict: {verdict}.")
    if verdict == "certified":
        text = text.format(radius=f"{(radius or 0) * 255:.1f}", linf=f"{linf * 255:.0f}")
    elif radius is not None:
        text += (
            f" Its certified radius on this image was {radius * 255:.1f}/255 per pixel; the change used "
            f"{linf * 255:.0f}/255, beyond what it can prove."
        )
    return text
