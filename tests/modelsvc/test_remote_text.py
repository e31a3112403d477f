"""POST /v1/text, POST /v1/text/classify and GET /v1/text/opponents of the separate-process model service: a real
in-process service's answers travel unchanged, bad requests are 422, and a backend without text says so (501)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.errors import ServiceUnavailable
from app.ml.service.in_process import InProcessModelService
from app.ml.service.text_contracts import TextJob, text_job_to_wire
from tests.modelsvc.test_remote_service import Switch, fake_service, started_client

TFIDF = "definitions-tfidf"
TEXTS = ["a small domesticated animal that purrs", "a building where people live"]


@pytest.mark.anyio
async def test_the_client_plays_text_through_the_server() -> None:
    service = InProcessModelService(opponents=["fashion-mlp"], device="cpu", timeout_s=300)
    await service.start()  # the in-memory transport runs no lifespan: the test starts the service itself
    client = await started_client(Switch(service))  # type: ignore[arg-type]
    try:
        remote = await client.classify_text(TFIDF, TEXTS, client="p1")
        assert remote == await service.classify_text(TFIDF, TEXTS)
        job = TextJob(TFIDF, "textfooler", 0.25, seed=5, client="p1")
        over_http, local = await client.text(job), await service.text(job)
        assert over_http.shown == local.shown and over_http.changed == local.changed
        assert over_http.probabilities == local.probabilities and over_http.text_index == local.text_index
        assert [info.name for info in await client.text_opponents()] == [TFIDF, "definitions-minilm"]
        with pytest.raises(ServiceUnavailable, match="not loaded"):
            await client.classify_text("no-such-opponent", TEXTS)
        bad = await client._client.post("/v1/text", json={**text_job_to_wire(job), "budget": 3})  # type: ignore[union-attr]
        assert bad.status_code == 422 and bad.json()["error"] == "invalid"
        empty = await client._client.post("/v1/text/classify", json={"opponent": TFIDF, "texts": []})  # type: ignore[union-attr]
        assert empty.status_code == 422
    finally:
        await client.stop()
        await service.stop()


@pytest.mark.anyio
async def test_a_backend_without_text_is_unsupported_not_a_crash() -> None:
    client = await started_client(Switch(fake_service()))
    try:
        reply = await client._client.post("/v1/text/classify", json={"opponent": TFIDF, "texts": TEXTS})  # type: ignore[union-attr]
        assert reply.status_code == 501 and reply.json()["error"] == "unsupported"
        with pytest.raises(ServiceUnavailable, match="does not play text"):
            await client.text(TextJob(TFIDF, "textfooler", 0.25, seed=1))
        assert await client.text_opponents() == ()
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_the_ray_replica_classifies_through_its_in_process_service() -> None:
    pytest.importorskip("ray", reason="the optional extra `ray` is not installed: pip install -e '.[ray]'")
    from app.modelsvc.ray_backend import ReplicaModelService

    inner = InProcessModelService(opponents=["fashion-mlp"], device="cpu", timeout_s=300)
    await inner.start()
    replica = ReplicaModelService(SimpleNamespace(inner=inner, health=inner.health))  # type: ignore[arg-type]
    try:
        assert await replica.classify_text(TFIDF, TEXTS) == await inner.classify_text(TFIDF, TEXTS)
        assert [info.name for info in await replica.text_opponents()] == [TFIDF, "definitions-minilm"]
    finally:
        await inner.stop()
