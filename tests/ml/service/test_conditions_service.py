"""What the real model service shows under each science-mode condition, and that each regenerates exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.ml.service.contracts import ImageJob
from tests.ml.conftest import StartModelService

pytestmark = pytest.mark.anyio
EPS = 12 / 255


def job(
    index: int, condition: str, *, attack: str = "pgd", eps: float = EPS, seed: int = 7, **params: object
) -> ImageJob:
    frozen = ImageJob.freeze_params(params or ({"steps": 10, "random_start": True} if attack == "pgd" else {}))
    return ImageJob("fashion-cnn", attack, frozen, index, eps, seed, condition=condition)


async def test_each_condition_shows_what_it_promises_and_regenerates_bit_for_bit(
    model_service: StartModelService,
) -> None:
    async with model_service("fashion-cnn", max_batch=8, torch_threads=1) as service:
        index = service.opponent_info("fashion-cnn").eligible_indices[5]
        clean = await service.generate(job(index, "clean"))
        assert np.array_equal(clean.adversarial, clean.clean) and clean.linf == 0 and not clean.fooled

        noise = await service.generate(job(index, "noise"))
        change = noise.adversarial.astype(int) - noise.clean.astype(int)
        assert np.abs(change).max() == 12, "the noise uses the whole budget"
        # sign noise: every pixel that is not pinned at black or white moves by exactly the budget
        free = (noise.clean >= 12) & (noise.clean <= 255 - 12)
        assert np.all(np.abs(change[free]) == 12)
        assert noise.queries is None

        adversarial = await service.generate(job(index, "adversarial"))
        flipped = await service.generate(job(index, "flipped"))
        delta = adversarial.adversarial.astype(int) - adversarial.clean.astype(int)
        expected = np.clip(adversarial.clean.astype(int) - delta, 0, 255)
        # the same attack (same seed), its change negated; float rounding may differ by one grey level
        assert np.abs(flipped.adversarial.astype(int) - expected).max() <= 1
        assert np.abs(flipped.adversarial.astype(int) - flipped.clean.astype(int)).max() <= 12

        l2_noise = await service.generate(job(index, "noise", attack="pgd-l2", eps=1.5, steps=5))
        assert 1.3 < l2_noise.l2 <= 1.5, "L2 noise is as large as the L2 budget allows, after rounding down"

        for result, condition in ((noise, "noise"), (flipped, "flipped"), (l2_noise, "noise")):
            again = await service.generate(
                dataclasses.replace(
                    job(index, condition),
                    attack="pgd-l2" if result is l2_noise else "pgd",
                    params=ImageJob.freeze_params({"steps": 5}) if result is l2_noise else job(index, condition).params,
                    eps=1.5 if result is l2_noise else EPS,
                )
            )
            assert np.array_equal(again.adversarial, result.adversarial), condition
