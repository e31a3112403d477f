"""Builders for in-memory trials, shared by the statistics tests."""

from __future__ import annotations

from datetime import UTC, datetime

from app.stats.trials import Trial


def trial(player: str, image: str | None, right: bool, model_right: bool = False, **keys: object) -> Trial:
    values: dict[str, object] = {
        "answer_id": f"{player}-{image}",
        "answered_at": datetime(2026, 1, 1, tzinfo=UTC),
        "player_id": player,
        "round_id": f"{player}-{image}",
        "shared_image": image,
        "event": None,
        "pack": "fashion",
        "opponent": "cnn",
        "attack": "pgd",
        "norm": "linf",
        "condition": "adversarial",
        "eps": 8 / 255,
        "true_label": 0,
        "human_answer": 0 if right else 1,
        "model_answer": 0 if model_right else 2,
        "human_correct": right,
        "model_correct": model_right,
    }
    values.update(keys)
    return Trial(**values)  # type: ignore[arg-type]
