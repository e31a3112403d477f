"""POST /v1/classify and /v1/smallest of the separate-process model service: a painter's answer and the machine's
smallest attack travel over the wire unchanged; a bad job is the caller's error (422 -> ValueError); a backend
without them says "unsupported"; the Ray replica forwards both to its in-process service."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from app.errors import ServiceUnavailable
from app.ml.packs import get_pack
from app.ml.service.classify_contracts import ClassifyJob, SmallestJob, classify_job_to_wire
from app.ml.service.in_process import InProcessModelService
from tests.modelsvc.test_remote_service import Switch, fake_service, started_client


@pytest.mark.anyio
async def test_the_client_classifies_and_searches_through_the_server() -> None:
    images, labels = get_pack("fashion").load_split("test")
    service = InProcessModelService(opponents=["fashion-cnn"], device="cpu", torch_threads=1)
    await service.start()
    client = await started_client(Switch(service))  # type: ignore[arg-type]
    try:
        job = ClassifyJob("fashion-cnn", images[3], client="painter")
        remote, local = await client.classify(job), await service.classify(job)
        assert remote == local and remote.label == int(labels[3])
        with pytest.raises(ValueError, match="shaped"):
            await client.classify(ClassifyJob("fashion-cnn", np.zeros((5, 5), np.uint8)))
        bad = await client._client.post("/v1/classify", json={**classify_job_to_wire(job), "top_k": 99})  # type: ignore[union-attr]
        assert bad.status_code == 422 and bad.json()["error"] == "invalid"
        best = await client.smallest_attack(SmallestJob("fashion-cnn", 3, "linf"))
        assert best.found and best.label != int(labels[3]) and best.adversarial.dtype == np.uint8
        assert best.pixels == int((best.adversarial != images[3]).sum())
    finally:
        await client.stop()
        await service.stop()


@pytest.mark.anyio
async def test_a_backend_without_classify_is_unsupported() -> None:
    client = await started_client(Switch(fake_service()))
    try:
        name = fake_service().info.name
        with pytest.raises(ServiceUnavailable):
            await client.classify(ClassifyJob(name, np.zeros((28, 28), np.uint8)))
        reply = await client._client.post(  # type: ignore[union-attr]
            "/v1/classify", json=classify_job_to_wire(ClassifyJob(name, np.zeros((28, 28), np.uint8)))
        )
        assert reply.status_code == 501 and reply.json()["error"] == "unsupported"
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_the_ray_replica_classifies_through_its_in_process_service() -> None:
    pytest.importorskip("ray", reason="the optional extra `ray` is not installed: pip install -e '.[ray]'")
    from app.modelsvc.ray_backend import ReplicaModelService

    images, labels = get_pack("fashion").load_split("test")
    inner = InProcessModelService(opponents=["fashion-cnn"], device="cpu", torch_threads=1)
    await inner.start()
    client = await started_client(Switch(ReplicaModelService(SimpleNamespace(inner=inner, health=inner.health))))  # type: ignore[arg-type]
    try:
        result = await client.classify(ClassifyJob("fashion-cnn", images[5], client="p"))
        assert result.label == int(labels[5]) and inner.jobs_run == 1
    finally:
        await client.stop()
        await inner.stop()
