"""The model service with PGD stopping on the shown image (issue 15): each result says how many steps its image
took, an image that stopped early fools the opponent as shown, and a fixed-step PGD round reports all its steps."""

from __future__ import annotations

import asyncio

import pytest

from app.ml.service.contracts import ImageJob
from tests.ml.conftest import StartModelService

pytestmark = pytest.mark.anyio


def job(index: int, eps: float, seed: int, *, stop: bool) -> ImageJob:
    params = {"steps": 20, "random_start": True, **({"stop_on_shown": True} if stop else {})}
    return ImageJob(
        opponent="fashion-cnn",
        attack="pgd",
        params=ImageJob.freeze_params(params),
        image_index=index,
        eps=eps,
        seed=seed,
    )


async def test_results_carry_the_steps_and_early_ones_fool_as_shown(model_service: StartModelService) -> None:
    async with model_service("fashion-cnn", max_batch=32, max_wait_ms=20.0) as service:
        indices = service.opponent_info("fashion-cnn").eligible_indices[:24]
        budgets = [(4 + 4 * (k % 3)) / 255 for k in range(24)]
        early = await asyncio.gather(
            *(service.generate(job(i, e, k, stop=True)) for k, (i, e) in enumerate(zip(indices, budgets, strict=True)))
        )
        fixed = await asyncio.gather(
            *(service.generate(job(i, e, k, stop=False)) for k, (i, e) in enumerate(zip(indices, budgets, strict=True)))
        )
    assert all(result.step_budget == 20 and result.steps == 20 for result in fixed)
    assert all(result.step_budget == 20 and result.steps is not None for result in early)
    stopped = [result for result in early if result.steps is not None and result.steps < 20]
    assert stopped, "at 8/255 and 12/255 PGD fools this CNN within a few steps"
    assert all(result.fooled for result in stopped)
    assert sum(r.steps or 0 for r in early) < sum(r.steps or 0 for r in fixed)
