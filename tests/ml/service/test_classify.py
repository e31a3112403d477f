"""Painters' answers (ClassifyJob) through the in-process service: batched across clients in one forward pass, the
same answer as the model alone, refused when malformed; and the machine's smallest attack, computed once."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import torch

from app.ml import get_pack
from app.ml.service.classify_contracts import (
    ClassifyJob,
    SmallestJob,
    classify_job_from_wire,
    classify_job_to_wire,
    smallest_result_from_wire,
    smallest_result_to_wire,
    top_k,
)
from app.ml.service.tensors import to_tensor
from app.ml.service.wire import WireError
from tests.ml.conftest import StartModelService


def test_top_k_orders_by_probability_then_label() -> None:
    result = top_k(np.array([0.1, 0.4, 0.4, 0.05, 0.05]), 3)
    assert result.labels == (1, 2, 0) and result.label == 1
    assert result.probabilities == (0.4, 0.4, 0.1)


def test_wire_round_trip_and_refusals() -> None:
    job = ClassifyJob("fashion-cnn", np.zeros((28, 28), np.uint8), client="p1")
    back = classify_job_from_wire(json.loads(json.dumps(classify_job_to_wire(job))))
    assert np.array_equal(back.image, job.image) and back.client == "p1" and back.top_k == 3
    with pytest.raises(WireError, match="top_k"):
        classify_job_from_wire({**classify_job_to_wire(job), "top_k": 0})
    wire = classify_job_to_wire(job)
    wire["image"]["__ndarray__"]["dtype"] = "float32"
    with pytest.raises(WireError):
        classify_job_from_wire(wire)


@pytest.mark.anyio
async def test_fifty_painters_share_batches_and_get_the_models_answer(model_service: StartModelService) -> None:
    images, _labels = get_pack("fashion").load_split("test")
    async with model_service("fashion-cnn", max_batch=64, max_wait_ms=20.0) as service:
        before = service.batches_run
        jobs = [ClassifyJob("fashion-cnn", images[i], client=f"painter-{i}") for i in range(50)]
        results = await asyncio.gather(*(service.classify(job) for job in jobs))
        batches = service.batches_run - before
        model = service._opponents["fashion-cnn"].model
        with torch.inference_mode():
            expected = torch.softmax(model(to_tensor(images[:50], torch.device("cpu"))), 1).numpy()
    assert batches < 50  # shared forward passes, not one per painter
    for i, result in enumerate(results):
        assert result.label == int(expected[i].argmax())
        assert len(result.labels) == 3 and result.probabilities[0] == pytest.approx(float(expected[i].max()), abs=1e-5)


@pytest.mark.anyio
async def test_a_wrongly_shaped_image_is_refused(model_service: StartModelService) -> None:
    async with model_service("fashion-cnn") as service:
        with pytest.raises(ValueError, match="shaped"):
            await service.classify(ClassifyJob("fashion-cnn", np.zeros((27, 28), np.uint8)))


@pytest.mark.anyio
async def test_the_smallest_linf_attack_is_found_once_and_fools(model_service: StartModelService) -> None:
    images, labels = get_pack("fashion").load_split("test")
    async with model_service("fashion-cnn") as service:
        job = SmallestJob("fashion-cnn", 0, "linf")
        first, second = await asyncio.gather(service.smallest_attack(job), service.smallest_attack(job))
        assert first is second  # one computation for both askers
        assert first.found and first.attack == "pgd" and first.label != int(labels[0])
        levels = round(first.linf * 255)
        assert 1 <= levels <= 128
        change = np.abs(first.adversarial.astype(int) - images[0].astype(int))
        assert change.max() == levels and first.pixels == int((change > 0).sum())
        # The service answers the machine's image wrongly too: the search's success is the opponent's own answer.
        answer = await service.classify(ClassifyJob("fashion-cnn", first.adversarial))
        assert answer.label == first.label
        again = smallest_result_from_wire(json.loads(json.dumps(smallest_result_to_wire(first))))
        assert np.array_equal(again.adversarial, first.adversarial) and again.pixels == first.pixels
