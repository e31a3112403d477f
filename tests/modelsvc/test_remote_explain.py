"""POST /v1/explain of the separate-process model service: a real explanation of fashion-cnn travels over the wire
unchanged (float32 maps, int64 grid, float64 axes), bad jobs are 422, and a backend that cannot explain says so."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import numpy as np
import pytest

from app.errors import ServiceUnavailable
from app.ml.packs import get_pack
from app.ml.service.explain_contracts import (
    ExplainJob,
    ExplainResult,
    explain_job_from_wire,
    explain_job_to_wire,
    explain_result_from_wire,
    explain_result_to_wire,
)
from app.ml.service.wire import WireError
from tests.fakes import FakeModelService
from tests.modelsvc.test_remote_service import INFO, Switch, fake_service, make_result, started_client


@pytest.fixture(scope="module")
def job() -> ExplainJob:
    images, labels = get_pack("fashion").load_split("test")
    shown = np.clip(images[0].astype(int) + np.where(np.arange(784).reshape(28, 28) % 2, 20, -20), 0, 255)
    return ExplainJob(
        opponent="toy",
        clean=images[0],
        shown=shown.astype(np.uint8),
        true_label=int(labels[0]),
        eps=20 / 255,
        norm="linf",
        seed=11,
        grid_size=11,
        smoothgrad_samples=4,
        line_points=9,
    )


class ExplainingService(FakeModelService):
    """The fake service plus a real explain() on the committed fashion-cnn."""

    def __init__(self) -> None:
        super().__init__(INFO, make_result)
        from app.ml.opponents.registry import load_opponent

        self.model = load_opponent("fashion-cnn")
        self.explained: list[ExplainJob] = []

    async def explain(self, job: ExplainJob) -> ExplainResult:
        from app.ml.measure.explain import explain

        self.explained.append(job)
        return await asyncio.to_thread(explain, self.model, job)


def assert_same(a: ExplainResult, b: ExplainResult) -> None:
    for name, value in vars(a).items():
        if name == "elapsed_ms":
            continue
        other = getattr(b, name)
        if isinstance(value, np.ndarray):
            assert isinstance(other, np.ndarray) and value.dtype == other.dtype, name
            assert np.array_equal(value, other), name
        else:
            assert value == other, name


def test_an_explanation_survives_json_exactly(job: ExplainJob) -> None:
    from app.ml.measure.explain import explain
    from app.ml.opponents.registry import load_opponent

    result = explain(load_opponent("fashion-cnn"), job)
    again = explain_result_from_wire(json.loads(json.dumps(explain_result_to_wire(result), allow_nan=False)))
    assert_same(result, again)
    back = explain_job_from_wire(json.loads(json.dumps(explain_job_to_wire(job))))
    assert np.array_equal(back.shown, job.shown) and back.seed == job.seed and back.grid_size == 11
    wire = explain_job_to_wire(job)
    with pytest.raises(WireError, match="odd"):
        explain_job_from_wire({**wire, "grid_size": 12})
    broken = explain_result_to_wire(result)
    broken["slice_a"] = broken["slice_b"] = explain_result_to_wire(result)["line_t"]
    with pytest.raises(WireError, match="axes"):
        explain_result_from_wire(broken)


@pytest.mark.anyio
async def test_the_client_explains_through_the_server(job: ExplainJob) -> None:
    service = ExplainingService()
    client = await started_client(Switch(service))
    try:
        result = await client.explain(job)
        assert len(service.explained) == 1 and np.array_equal(service.explained[0].clean, job.clean)
        from app.ml.measure.explain import explain

        # Seeded: the same pictures as computed here. Computed the way the service did, on a worker thread:
        # OpenMP's thread count is per thread, and a different count may round the last bit differently.
        assert_same(result, await asyncio.to_thread(explain, service.model, job))
        assert result.slice_labels.dtype == np.int64 and result.saliency_clean.dtype == np.float32
        assert result.image_point_label == result.clean_label
        assert result.shown_point_label == result.shown_label
        bad = await client._client.post("/v1/explain", json={**explain_job_to_wire(job), "norm": "l7"})  # type: ignore[union-attr]
        assert bad.status_code == 422 and bad.json()["error"] == "invalid"
        unknown = await client._client.post("/v1/explain", json={**explain_job_to_wire(job), "opponent": "nope"})  # type: ignore[union-attr]
        assert unknown.status_code == 422
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_a_backend_without_explain_is_unsupported_not_a_crash(job: ExplainJob) -> None:
    client = await started_client(Switch(fake_service()))
    try:
        reply = await client._client.post("/v1/explain", json=explain_job_to_wire(job))  # type: ignore[union-attr]
        assert reply.status_code == 501 and reply.json()["error"] == "unsupported"
        with pytest.raises(ServiceUnavailable):
            await client.explain(job)
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_the_ray_replica_explains_through_its_in_process_service(job: ExplainJob) -> None:
    pytest.importorskip("ray", reason="the optional extra `ray` is not installed: pip install -e '.[ray]'")
    from app.modelsvc.ray_backend import ReplicaModelService

    inner = ExplainingService()
    client = await started_client(Switch(ReplicaModelService(SimpleNamespace(inner=inner, health=inner.health))))  # type: ignore[arg-type]
    try:
        result = await client.explain(job)
        assert len(inner.explained) == 1 and result.image_point_label == result.clean_label
    finally:
        await client.stop()
