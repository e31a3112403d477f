"""Why the machine fails, for one stored round (issue #7): the job sent to the model service and the numbers as
plain data, once app/game/explain_access.py lets the player see them. Shared by the page (app/web/explain.py) and
the JSON API (app/api/explain.py); no HTTP and no torch here (the model service computes, app/stats/plots/explain.py
draws)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import PlayerRecord, RoundRecord
from app.game.explain_access import explainable_round
from app.images import from_png
from app.ml.service.contracts import ModelService
from app.ml.service.explain_contracts import GRID_SIZE, SMOOTHGRAD_SAMPLES, ExplainJob, ExplainResult

# Above this many pixel values per image (ImageNet's 150,528) a round gets a coarser slice and fewer noisy copies:
# each grid point and copy is a forward pass of a much bigger net.
SMALL_IMAGE_VALUES = 3 * 64 * 64
LARGE_GRID_SIZE = 15
LARGE_SMOOTHGRAD_SAMPLES = 8


def images_of(record: RoundRecord) -> tuple[np.ndarray, np.ndarray]:
    """The clean and the shown image exactly as stored (uint8 pixels decoded from the round's PNGs)."""
    return from_png(record.clean_png), from_png(record.adversarial_png)


def explain_job(record: RoundRecord, share: str = "") -> ExplainJob:
    """``share``: whose turns of the model worker's explain lane the job takes (opaque here: the routes pass one key
    per client address); the one-waiting-explanation rule stays per player."""
    clean, shown = images_of(record)
    small = clean.size <= SMALL_IMAGE_VALUES
    return ExplainJob(
        opponent=record.opponent,
        clean=clean,
        shown=shown,
        true_label=int(record.true_label),
        eps=float(record.eps),
        norm=record.norm or "linf",
        seed=int(record.seed),
        grid_size=GRID_SIZE if small else LARGE_GRID_SIZE,
        smoothgrad_samples=SMOOTHGRAD_SAMPLES if small else LARGE_SMOOTHGRAD_SAMPLES,
        client=record.player_id,
        share=share,
    )


async def explain_round(
    session: AsyncSession, service: ModelService, *, player: PlayerRecord, round_id: str, client_key: str = ""
) -> tuple[RoundRecord, ExplainResult]:
    record = await explainable_round(session, player=player, round_id=round_id)
    return record, await service.explain(explain_job(record, client_key))


def _rows(array: np.ndarray | None, digits: int = 6) -> list[Any] | None:
    return None if array is None else np.round(array.astype(np.float64), digits).tolist()


def explain_numbers(record: RoundRecord, result: ExplainResult, class_names: tuple[str, ...]) -> dict[str, Any]:
    """Everything the three views are drawn from, as JSON-ready data (class indices plus their names)."""
    centre = result.slice_center_row
    return {
        "round_id": record.id,
        "opponent": result.opponent,
        "class_names": list(class_names),
        "true_label": result.true_label,
        "clean_label": result.clean_label,
        "shown_label": result.shown_label,
        "stored_model_label": int(record.model_label),
        "differentiable": result.differentiable,
        "unavailable": result.unavailable or None,
        "saliency": {
            "method": result.saliency_method,
            "samples": result.saliency_samples,
            "sigma": result.saliency_sigma,
            "clean": _rows(result.saliency_clean),
            "shown": _rows(result.saliency_shown),
        },
        "slice": {
            "u": result.slice_u,
            "v": "a random direction at right angles to u, drawn from the round's seed",
            "a": result.slice_a.tolist(),
            "b": result.slice_b.tolist(),
            "labels": result.slice_labels.tolist(),
            "evaluated": result.slice_evaluated,
            "image_point": {
                "a": 0.0,
                "b": 0.0,
                "row": centre,
                "column": result.slice_origin,
                "label": result.image_point_label,
            },
            "shown_point": {
                "a": float(result.slice_a[result.slice_shown]),
                "b": 0.0,
                "row": centre,
                "column": result.slice_shown,
                "label": result.shown_point_label,
            },
        },
        "linearity": {
            "direction": result.line_direction or None,
            "t": _rows(result.line_t),
            "classes": list(result.line_classes),
            "logits": _rows(None if result.line_logits is None else result.line_logits.T),
            "r2": list(result.line_r2),
            "r2_true_class": result.linearity_r2,
        },
        "elapsed_ms": result.elapsed_ms,
    }
