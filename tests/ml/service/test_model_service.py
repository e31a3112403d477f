"""The in-process model service with the real opponent: batching, budgets, answers, back-pressure, shutdown."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.errors import ServiceBusy, ServiceUnavailable
from app.ml.service.contracts import ImageJob
from app.ml.service.in_process import InProcessModelService
from tests.ml.conftest import StartModelService

pytestmark = pytest.mark.anyio
PARAMS = ImageJob.freeze_params({"steps": 10, "random_start": True})


def job(index: int, eps: float, seed: int = 0) -> ImageJob:
    return ImageJob(opponent="fashion-cnn", attack="pgd", params=PARAMS, image_index=index, eps=eps, seed=seed)


async def test_concurrent_jobs_are_batched_and_each_gets_its_own_result(model_service: StartModelService) -> None:
    async with model_service("fashion-cnn", max_batch=32, max_wait_ms=20.0) as service:
        info = service.opponent_info("fashion-cnn")
        assert info.class_names[0] == "T-shirt/top" and info.clean_accuracy >= 0.91
        assert len(info.eligible_indices) == round(info.clean_accuracy * 10_000)
        indices = info.eligible_indices[:24]
        budgets = [(k % 4) * 8 / 255 for k in range(24)]  # includes eps 0: such a job must come back untouched
        results = await asyncio.gather(
            *(service.generate(job(i, e, seed=k)) for k, (i, e) in enumerate(zip(indices, budgets, strict=True)))
        )
        assert service.batches_run < len(indices), "concurrent compatible jobs share batches"
        for result, eps in zip(results, budgets, strict=True):
            assert result.clean.shape == result.adversarial.shape == (28, 28)
            assert result.adversarial.dtype == np.uint8
            change = np.abs(result.adversarial.astype(int) - result.clean.astype(int)).max()
            assert change <= round(eps * 255) and result.linf == pytest.approx(change / 255)
            assert result.clean_label == result.true_label, "eligible images are classified right when clean"
            assert sum(result.adversarial_probs) == pytest.approx(1.0, abs=1e-4)
            assert result.adversarial_label == int(np.argmax(result.adversarial_probs))
            if eps == 0:
                assert change == 0 and not result.fooled
        strong = [r for r, e in zip(results, budgets, strict=True) if e >= 16 / 255]
        assert sum(r.fooled for r in strong) >= len(strong) // 2, "PGD at 16/255 fools this CNN on most images"
        health = await service.health()
        assert health["ok"] and health["jobs_run"] == len(indices) and health["device"] == "cpu"


async def test_a_jobs_result_does_not_depend_on_its_batch(model_service: StartModelService) -> None:
    async with model_service("fashion-cnn", max_batch=1, max_wait_ms=0.0) as service:
        indices = service.opponent_info("fashion-cnn").eligible_indices[:6]
        alone = [await service.generate(job(i, 10 / 255, seed=i)) for i in indices]
    async with model_service("fashion-cnn", max_batch=32, max_wait_ms=50.0) as batched_service:
        together = await asyncio.gather(*(batched_service.generate(job(i, 10 / 255, seed=i)) for i in indices))
        assert batched_service.batches_run == 1
    for a, b in zip(alone, together, strict=True):
        # Per-sample seeds make the random start identical; float sums may differ in the last bit between batch
        # sizes, which can move a pixel by one grey level at most.
        assert np.abs(a.adversarial.astype(int) - b.adversarial.astype(int)).max() <= 1


async def test_full_queue_says_busy_instead_of_waiting_forever(model_service: StartModelService) -> None:
    async with model_service("fashion-cnn", queue_size=1, max_batch=1, max_wait_ms=0.0) as service:
        index = service.opponent_info("fashion-cnn").eligible_indices[0]
        outcomes = await asyncio.gather(*(service.generate(job(index, 0.05)) for _ in range(6)), return_exceptions=True)
        assert sum(isinstance(o, ServiceBusy) for o in outcomes) >= 4
        assert any(not isinstance(o, Exception) for o in outcomes)


async def test_stopped_service_is_unavailable_and_reports_it(model_service: StartModelService) -> None:
    async with model_service("fashion-cnn", max_batch=32, max_wait_ms=20.0) as service:
        pass
    with pytest.raises(ServiceUnavailable):
        await service.generate(job(0, 0.05))
    assert (await service.health())["ok"] is False
    with pytest.raises(ServiceUnavailable):
        service.opponent_info("no-such-opponent")


def test_worker_threads_leave_a_core_to_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.ml.service import worker_device as service_module

    assert service_module.worker_threads(3) == 3
    monkeypatch.setattr(service_module.os, "cpu_count", lambda: 2)
    assert service_module.worker_threads(0) == 1
    monkeypatch.setattr(service_module.os, "cpu_count", lambda: 8)
    assert service_module.worker_threads(0) == 7
    monkeypatch.setattr(service_module.os, "cpu_count", lambda: None)
    assert service_module.worker_threads(0) == 1


def test_the_attack_catalogue_is_built_once_and_shared_read_only() -> None:
    service = InProcessModelService(opponents=["fashion-cnn"], device="cpu")
    catalog = service.attack_catalog()
    assert service.attack_catalog() is catalog, "every round reads it: no copy per call"
    assert any(entry["name"] == "pgd" for entry in catalog)
    with pytest.raises(TypeError):
        catalog[0]["name"] = "changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        catalog[0]["params"][0]["default"] = 0  # type: ignore[index]
