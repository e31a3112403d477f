"""InProcessModelService.run_batch: the service's compute step without its queue, for an outside batcher (Ray Serve
in app/modelsvc/ray_backend.py). Same images as the queue for the same jobs; one batch key per call."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.errors import ServiceUnavailable
from app.ml.service.contracts import ImageJob
from app.ml.service.in_process import InProcessModelService
from tests.ml.conftest import StartModelService

pytestmark = pytest.mark.anyio
PARAMS = ImageJob.freeze_params({"steps": 5, "random_start": True})


def job(index: int, eps: float, seed: int, attack: str = "pgd") -> ImageJob:
    params = PARAMS if attack == "pgd" else ()
    return ImageJob(opponent="fashion-cnn", attack=attack, params=params, image_index=index, eps=eps, seed=seed)


async def test_run_batch_gives_the_queues_images_and_refuses_mixed_batches(model_service: StartModelService) -> None:
    not_started = InProcessModelService(opponents=["fashion-cnn"], device="cpu")
    with pytest.raises(ServiceUnavailable):
        await not_started.run_batch([job(0, 0.1, 1)])  # no worker
    async with model_service("fashion-cnn", max_batch=8, max_wait_ms=20.0) as service:
        indices = service.opponent_info("fashion-cnn").eligible_indices[:6]
        jobs = [job(i, (2 + k) / 255, seed=k) for k, i in enumerate(indices)]
        direct = await service.run_batch(jobs)
        queued = await asyncio.gather(*(service.generate(j) for j in jobs))
        for a, b, j in zip(direct, queued, jobs, strict=True):
            assert np.array_equal(a.adversarial, b.adversarial) and a.adversarial_label == b.adversarial_label
            assert a.image_index == j.image_index and a.seed == j.seed and a.linf <= j.eps + 1e-9
        health = await service.health()
        assert health["jobs_run"] == 2 * len(jobs)
        with pytest.raises(ValueError, match="batch key"):
            await service.run_batch([job(indices[0], 0.1, 1), job(indices[1], 0.1, 2, attack="fgsm")])
