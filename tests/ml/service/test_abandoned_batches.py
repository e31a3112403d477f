"""Issue 16: a batch whose callers have all timed out is not run. Through the model service's own contract
(generate() with the service's timeout) and its worker-thread step, which a fake replaces here so that the test
can hold the worker and count what it is asked to compute; no torch runs in the jobs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from app.errors import ServiceUnavailable
from app.ml.service.contracts import ImageJob, ImageResult
from app.ml.service.in_process import InProcessModelService

pytestmark = pytest.mark.anyio
TIMEOUT_S = 1.0


def job(steps: int, seed: int) -> ImageJob:
    # Different steps: different batch keys, so the two jobs below make two groups of one collected batch.
    return ImageJob(
        "fashion-cnn", "pgd", ImageJob.freeze_params({"steps": steps}), image_index=seed, eps=0.05, seed=seed
    )


def answer(job: ImageJob) -> ImageResult:
    pixels = np.zeros((28, 28), dtype=np.uint8)
    probs = tuple(1.0 if label == 0 else 0.0 for label in range(10))
    return ImageResult(pixels, pixels, 0, 0, 1.0, 0, probs, 0.0, image_index=job.image_index, seed=job.seed)


class HeldWorker:
    """Stands in for the service's compute step on its worker thread: records each batch's seeds and keeps the
    first batch running until ``release`` is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()

    def compute(self, jobs: list[ImageJob]) -> list[ImageResult]:
        self.batches.append([job.seed for job in jobs])
        if len(self.batches) == 1:
            self.release.wait(timeout=30)
        return [answer(job) for job in jobs]


@pytest.fixture
def worker() -> Iterator[HeldWorker]:
    held = HeldWorker()
    yield held
    held.release.set()  # never leave the worker thread waiting, whatever the test did


async def test_a_group_whose_callers_timed_out_while_an_earlier_group_ran_is_not_run(
    worker: HeldWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = InProcessModelService(opponents=["fashion-cnn"], device="cpu", torch_threads=1, timeout_s=TIMEOUT_S)
    await service.start()
    try:
        # The worker-thread step of both the old and the new service: attack a batch of compatible jobs.
        monkeypatch.setattr(service, "_compute", worker.compute)
        # Asked together, so that both are collected into one batch: the cheaper group (5 steps) runs first and holds
        # the worker past both callers' timeout; the 20-step group waits behind it.
        replies = await asyncio.gather(
            service.generate(job(5, 1)), service.generate(job(20, 2)), return_exceptions=True
        )
        assert all(isinstance(reply, ServiceUnavailable) for reply in replies), replies
        worker.release.set()
        # A later job is answered only after the collector has dealt with the whole earlier batch.
        later = await service.generate(job(5, 3))
        assert later.seed == 3
    finally:
        await service.stop()
    assert worker.batches == [[1], [3]], "the 20-step job, whose caller had gone, must not be computed"
