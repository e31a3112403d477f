"""The remote model service: the wire codec, the HTTP server around a ModelService, and the client's mapping of
every failure to ServiceBusy / ServiceUnavailable, its health states and its recovery after a restart. These run
on fakes over in-memory transports (no torch, no sockets); tests/load/test_kill_model_service.py kills a real one."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import messages
from app.errors import ServiceBusy, ServiceUnavailable
from app.ml.service.contracts import (
    ImageJob,
    ImageResult,
    OpponentInfo,
    info_from_wire,
    info_to_wire,
    job_from_wire,
    job_to_wire,
    result_from_wire,
    result_to_wire,
)
from app.ml.service.wire import WireError, decode_array
from app.modelsvc.client import RemoteModelService
from app.modelsvc.server import create_server_app
from tests.fakes import FakeModelService

PARAMS = ImageJob.freeze_params({"steps": 20, "random_start": True, "norm": "linf"})


def wire_roundtrip(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data, allow_nan=False))


def make_job(index: int = 7, eps: float = 12 / 255, seed: int = 2**61 + 3, **changes: Any) -> ImageJob:
    values: dict[str, Any] = dict(opponent="toy", attack="pgd", params=PARAMS, image_index=index, eps=eps, seed=seed)
    values.update(changes)
    return ImageJob(**values)


def make_result(job: ImageJob, rng: np.random.Generator | None = None) -> ImageResult:
    rng = rng or np.random.default_rng(job.seed % 1000)
    clean = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    adversarial = np.clip(clean.astype(int) + 3, 0, 255).astype(np.uint8)
    probs = tuple(float(p) for p in rng.dirichlet(np.ones(10)))
    return ImageResult(
        clean=clean,
        adversarial=adversarial,
        true_label=job.image_index % 10,
        clean_label=job.image_index % 10,
        clean_confidence=0.97,
        adversarial_label=int(np.argmax(probs)),
        adversarial_probs=probs,
        linf=3 / 255,
        l2=1.25,
        queries=None,
        query_budget=None,
        image_index=job.image_index,
        seed=job.seed,
    )


INFO = OpponentInfo(
    name="toy",
    pack="fashion",
    class_names=("a", "b", "c"),
    eligible_indices=(1, 2, 5, 7),
    min_eps=0.03,
    clean_accuracy=0.9,
    card={"staircase": {"min_eps": 0.03}, "metrics": [1, 2.5]},
)


# -- the codec -------------------------------------------------------------------------------------------------


def test_job_result_and_info_survive_json_exactly() -> None:
    job = make_job(any_image=False)
    back = job_from_wire(wire_roundtrip(job_to_wire(job)))
    assert back == job and hash(back.batch_key) == hash(job.batch_key), "params come back hashable, as tuples"
    result = make_result(job)
    decoded = result_from_wire(wire_roundtrip(result_to_wire(result)))
    assert np.array_equal(decoded.clean, result.clean) and np.array_equal(decoded.adversarial, result.adversarial)
    assert decoded.adversarial.dtype == np.uint8 and decoded.adversarial.shape == (28, 28)
    assert decoded.adversarial_probs == result.adversarial_probs, "floats travel exactly"
    assert (decoded.l2, decoded.queries, decoded.image_index, decoded.seed) == (1.25, None, 7, job.seed)
    assert info_from_wire(wire_roundtrip(info_to_wire(INFO))) == INFO


def test_images_are_raw_bytes_in_base64_not_pickle() -> None:
    wire = result_to_wire(make_result(make_job()))
    spec = wire["adversarial"]["__ndarray__"]
    assert spec["dtype"] == "uint8" and spec["shape"] == [28, 28]
    assert len(base64.b64decode(spec["data"])) == 28 * 28


def test_fields_the_decoder_does_not_know_are_ignored_and_missing_defaults_apply() -> None:
    wire = job_to_wire(make_job())
    wire["from_a_newer_service"] = {"x": 1}
    del wire["any_image"]
    assert job_from_wire(wire) == make_job()


def corrupt(path: str, value: Any) -> dict[str, Any]:
    wire = result_to_wire(make_result(make_job()))
    wire["adversarial"]["__ndarray__"][path] = value
    return wire


@pytest.mark.parametrize(
    "wire",
    [
        corrupt("dtype", "object"),
        corrupt("dtype", "complex128"),
        corrupt("shape", [28, 27]),  # 756 bytes declared, 784 sent
        corrupt("shape", [-28, -28]),
        corrupt("shape", [1, 1, 1, 1, 784]),
        corrupt("shape", "28x28"),
        corrupt("data", "not base64!"),
        corrupt("data", base64.b64encode(b"\0" * 783).decode()),
        corrupt("data", "A" * (30 * 1024 * 1024)),
    ],
)
def test_arrays_that_do_not_match_their_description_are_refused(wire: dict[str, Any]) -> None:
    with pytest.raises(WireError):
        result_from_wire(wire)


def test_malformed_messages_are_refused_with_the_reason() -> None:
    with pytest.raises(WireError, match="needs the field 'seed'"):
        job_from_wire({k: v for k, v in job_to_wire(make_job()).items() if k != "seed"})
    with pytest.raises(WireError, match="JSON object"):
        job_from_wire([1, 2, 3])
    with pytest.raises(WireError, match="pairs"):
        job_from_wire({**job_to_wire(make_job()), "params": [["steps"]]})
    wire = result_to_wire(make_result(make_job()))
    wire["adversarial"] = [[0, 1], [2, 3]]
    with pytest.raises(WireError):
        result_from_wire(wire)
    with pytest.raises(WireError, match="cannot send"):
        result_to_wire(
            make_result(make_job()).__class__(**{**make_result(make_job()).__dict__, "clean": np.array([None])})
        )


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(0, 6), min_size=0, max_size=4),
    dtype=st.sampled_from(["uint8", "float32", "float64", "int64"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_allowed_array_round_trips(shape: list[int], dtype: str, seed: int) -> None:
    array = np.asarray(np.random.default_rng(seed).random(shape) * 200).astype(dtype)
    result = make_result(make_job())
    wire = wire_roundtrip(result_to_wire(ImageResult(**{**result.__dict__, "clean": array, "adversarial": array})))
    # An ImageResult needs uint8 images of one shape; the array codec itself carries any allowed dtype and shape.
    back = decode_array(wire["clean"]["__ndarray__"])
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)


# -- the server and the client over an in-memory transport -----------------------------------------------------


def fake_service() -> FakeModelService:
    return FakeModelService(INFO, make_result)


class Switch(httpx.AsyncBaseTransport):
    """A transport to an in-memory server that can be 'killed' (connection refused) and 'restarted' (a new
    process: a new server app with a new instance id)."""

    def __init__(self, service: FakeModelService) -> None:
        self.service = service
        self.failure: Exception | None = None
        self.restart()

    def restart(self) -> None:
        app = create_server_app(self.service)  # type: ignore[arg-type]
        self.inner = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a bug answers 500, as uvicorn does
        self.failure = None

    def kill(self, failure: Exception | None = None) -> None:
        self.failure = failure or httpx.ConnectError("[Errno 111] Connection refused")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.failure is not None:
            raise self.failure
        return await self.inner.handle_async_request(request)


async def started_client(switch: Switch, **options: Any) -> RemoteModelService:
    options.setdefault("probe_interval_s", 0.01)
    options.setdefault("up_probe_interval_s", 0.05)
    client = RemoteModelService("http://modelsvc.test", transport=switch, **options)
    await client.start()
    return client


async def until(predicate: Any, what: str, limit_s: float = 5.0) -> None:
    """Wait for a state the background monitor reaches; the limit only stops a broken test from hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"never reached: {what}")
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_client_caches_the_catalogue_and_generates_over_http() -> None:
    service = fake_service()
    client = await started_client(Switch(service))
    try:
        assert client.state == "up"
        assert client.opponent_names() == ["toy"] and client.opponent_info("toy") == INFO
        assert client.attack_catalog()[0]["name"] == "pgd"
        jobs = [make_job(index=i, seed=i) for i in range(5)]
        results = await asyncio.gather(*(client.generate(job) for job in jobs))
        assert service.jobs == jobs, "each job reaches the service unchanged"
        for job, result in zip(jobs, results, strict=True):
            assert np.array_equal(result.adversarial, make_result(job).adversarial) and result.seed == job.seed
        health = await client.health()
        assert health["ok"] and health["state"] == "up" and health["remote"]["backend"] == "inprocess"
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_a_full_remote_queue_is_busy_with_its_retry_after() -> None:
    service = fake_service()
    client = await started_client(Switch(service))
    try:
        service.fail = ServiceBusy(messages.SERVICE_BUSY)
        with pytest.raises(ServiceBusy) as busy:
            await client.generate(make_job())
        assert busy.value.status_code == 503 and busy.value.retry_after_s == ServiceBusy.retry_after_s
        assert client.state == "up", "a busy service is not a broken one"
        service.fail = ServiceUnavailable(messages.SERVICE_DOWN)
        with pytest.raises(ServiceUnavailable) as down:
            await client.generate(make_job())
        assert down.value.message == messages.SERVICE_DOWN and down.value.retry_after_s == 5
        service.fail = RuntimeError("a bug in the backend")  # the server's own 500
        with pytest.raises(ServiceUnavailable):
            await client.generate(make_job())
        assert "500" in (client.last_error or "")
        service.fail = None
        with pytest.raises(ServiceUnavailable):
            await client.generate(make_job(opponent="not-loaded"))
        assert "422" in (client.last_error or "")
    finally:
        await client.stop()


@pytest.mark.parametrize(
    ("failure", "state"),
    [
        (httpx.ConnectError("refused"), "down"),
        (httpx.ReadError("connection reset by peer"), "down"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "down"),
        (httpx.ReadTimeout("timed out"), "up"),
    ],
)
@pytest.mark.anyio
async def test_transport_failures_become_unavailable_with_a_clear_detail(failure: Exception, state: str) -> None:
    switch = Switch(fake_service())
    client = await started_client(switch, up_probe_interval_s=60.0)
    try:
        switch.kill(failure)
        with pytest.raises(ServiceUnavailable) as error:
            await client.generate(make_job())
        assert error.value.message == messages.SERVICE_DOWN
        assert client.state == state, "a slow answer alone does not mark the service down"
        assert "http://modelsvc.test" in (client.last_error or "")
        if state == "down":
            assert "arena modelsvc" in (client.last_error or "") and "ARENA_MODEL_SERVICE_URL" in client.last_error
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_pool_exhaustion_is_busy_not_down() -> None:
    service = fake_service()
    service.gate = asyncio.Event()
    client = await started_client(Switch(service), max_connections=1)
    try:
        # httpx's ASGI transport does not hold pool slots, so exhaust the pool directly through its timeout.
        first = asyncio.create_task(client.generate(make_job(seed=1)))
        await until(lambda: len(service.jobs) == 1, "the first job reached the service")
        service.gate.set()
        await first
        client._client._transport = httpx.MockTransport(lambda request: (_ for _ in ()).throw(httpx.PoolTimeout("")))  # type: ignore[union-attr]
        with pytest.raises(ServiceBusy):
            await client.generate(make_job())
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_outage_is_reported_and_recovered_from_without_restarting_the_client() -> None:
    service = fake_service()
    switch = Switch(service)
    client = await started_client(switch)
    try:
        first_instance = (await client.health())["instance"]
        switch.kill()
        with pytest.raises(ServiceUnavailable):
            await client.generate(make_job())
        health = await client.health()
        assert not health["ok"] and health["state"] == "down" and health["outages"] == 1
        assert client.opponent_info("toy") == INFO, "the catalogue is kept through an outage"
        # The process comes back but is still loading its models: recovering, not up.
        service.ready = False
        switch.restart()
        assert (await client.health())["state"] == "recovering"
        service.ready = True
        await until(lambda: client.state == "up", "up again after the restart")
        health = await client.health()
        assert health["ok"] and health["instance"] != first_instance, "the restarted process was noticed"
        assert (await client.generate(make_job())).seed == make_job().seed
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_starting_before_the_model_service_is_up_waits_for_it_in_the_background() -> None:
    switch = Switch(fake_service())
    switch.kill()
    client = await started_client(switch)
    try:
        health = await client.health()
        assert health["state"] == "down" and not health["ok"]
        with pytest.raises(ServiceUnavailable):
            client.opponent_names()
        with pytest.raises(ServiceUnavailable):
            client.opponent_info("toy")
        with pytest.raises(ServiceUnavailable):
            client.attack_catalog()
        switch.restart()
        await until(lambda: client.state == "up", "the late service was found")
        assert client.opponent_names() == ["toy"]
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_server_health_and_catalogue_endpoints() -> None:
    service = fake_service()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_server_app(service)), base_url="http://s"
    ) as http:  # type: ignore[arg-type]
        health = await http.get("/v1/health")
        assert health.status_code == 200 and health.json()["protocol"] == 1 and health.json()["instance"]
        service.ready = False
        assert (await http.get("/v1/health")).status_code == 503
        assert (await http.get("/v1/opponents")).json() == {"opponents": ["toy"]}
        assert info_from_wire((await http.get("/v1/opponents/toy")).json()) == INFO
        missing = await http.get("/v1/opponents/nope")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        bad = await http.post("/v1/generate", json={"opponent": "toy"})
        assert bad.status_code == 422 and bad.json()["error"] == "invalid" and "needs the field" in bad.json()["detail"]
        service.fail = ServiceBusy(messages.SERVICE_BUSY)
        busy = await http.post("/v1/generate", json=job_to_wire(make_job()))
        assert busy.status_code == 503 and busy.json()["error"] == "busy" and busy.headers["Retry-After"] == "2"
