"""GET /api/v1/rounds/{round_id}/explain: the numbers behind "why the machine fails" (issue #7) for one answered
round of the calling player: SmoothGrad saliency maps, the decision-boundary slice and the linearity curve with its
R². The same rules as the page: someone else's round, an unanswered one or a together image still counting down is
404. Computed by the model service on each call (app/ml/measure/explain.py); nothing is cached."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.api.limits import fair_share_key
from app.api.openapi import problem_responses
from app.deps import ApiPlayer, ServiceDep, SessionDep
from app.stats import explain as explain_stats

router = APIRouter(prefix="/api/v1", tags=["explain"])


class SaliencyOut(BaseModel):
    method: str = Field(description="smoothgrad: |mean input gradient| of the answered class's logit over noisy copies")
    samples: int = Field(description="Noisy copies averaged")
    sigma: float = Field(description="Noise standard deviation, pixel units")
    clean: list[list[float]] | None = Field(description="(H,W) map for the clean image; null without gradients")
    shown: list[list[float]] | None = Field(description="(H,W) map for the shown image; null without gradients")


class SlicePoint(BaseModel):
    a: float
    b: float
    row: int
    column: int
    label: int = Field(description="The model's class at this point of the grid")


class SliceOut(BaseModel):
    u: str = Field(description="How the horizontal direction u was chosen")
    v: str = Field(description="How the vertical direction v was chosen")
    a: list[float] = Field(description="Grid coordinates along u (columns), L2 pixel units")
    b: list[float] = Field(description="Grid coordinates along v (rows), L2 pixel units")
    labels: list[list[int]] = Field(description="labels[row][column]: the model's class at clean + a*u + b*v")
    evaluated: int = Field(description="Grid points actually classified (the rest filled coarse to fine)")
    image_point: SlicePoint
    shown_point: SlicePoint


class LinearityOut(BaseModel):
    direction: str | None = Field(description="The step direction; null without gradients")
    t: list[float] | None = Field(description="Step sizes along the direction")
    classes: list[int] = Field(description="Classes whose logits are given")
    logits: list[list[float]] | None = Field(description="logits[k][i]: class classes[k] at step t[i]")
    r2: list[float] = Field(description="R² of a straight-line fit, per class")
    r2_true_class: float | None = Field(description="R² for the true class; null without gradients")


class ExplainOut(BaseModel):
    round_id: str
    opponent: str
    class_names: list[str]
    true_label: int
    clean_label: int = Field(description="The model's class on the clean image")
    shown_label: int = Field(description="The model's class on the shown image, recomputed now")
    stored_model_label: int = Field(description="The model's answer stored with the round")
    differentiable: bool
    unavailable: str | None = Field(description="Why saliency and linearity are missing, if they are")
    saliency: SaliencyOut
    slice: SliceOut
    linearity: LinearityOut
    elapsed_ms: float = Field(description="Model-service time for this explanation")


@router.get(
    "/rounds/{round_id}/explain",
    response_model=ExplainOut,
    responses=problem_responses(
        {
            401: "Missing or invalid player token",
            404: "No such round, not yours, not answered yet, or still counting down",
            503: "Model service busy or down; retry after Retry-After seconds",
        }
    ),
)
async def get_round_explanation(
    request: Request, round_id: str, player: ApiPlayer, session: SessionDep, service: ServiceDep
) -> dict[str, Any]:
    record, result = await explain_stats.explain_round(
        session, service, player=player, round_id=round_id, client_key=fair_share_key(request)
    )
    return explain_stats.explain_numbers(record, result, tuple(service.opponent_info(record.opponent).class_names))
