"""text_similarity, the editor's op: edits from many players are encoded in one all-MiniLM-L6-v2 batch on the worker
thread, the floor is the synonym attacks' own, and the op travels over the separate-process protocol unchanged."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.errors import ServiceUnavailable
from app.ml.service.text_edit_contracts import (
    SIMILARITY_FLOOR,
    TextSimilarityJob,
    TextSimilarityResult,
    similarity_job_from_wire,
    similarity_job_to_wire,
    similarity_result_from_wire,
    similarity_result_to_wire,
)
from app.ml.service.wire import WireError
from tests.fakes import FakeModelService
from tests.modelsvc.test_remote_service import INFO, Switch, fake_service, make_result, started_client

ORIGINAL = "a domesticated carnivorous mammal that is kept as a pet"
CLOSE = "a domesticated carnivorous beast that is kept as a pet"
FAR = "a wooden building where grain is stored on a farm"


def test_the_contract_floor_is_the_synonym_attacks_floor() -> None:
    from app.ml.text.attacks import SYNONYM_FLOOR

    assert SIMILARITY_FLOOR == SYNONYM_FLOOR


def test_jobs_and_results_survive_json_and_bad_jobs_are_refused() -> None:
    job = TextSimilarityJob(ORIGINAL, CLOSE, client="p1")
    back = similarity_job_from_wire(json.loads(json.dumps(similarity_job_to_wire(job))))
    assert back == job and back.client == "p1"
    result = TextSimilarityResult(0.91, 0.8)
    assert similarity_result_from_wire(json.loads(json.dumps(similarity_result_to_wire(result)))) == result
    with pytest.raises(WireError, match="longer than"):
        similarity_job_from_wire({"original": ORIGINAL, "edited": "x" * 601})
    with pytest.raises(WireError, match="string"):
        similarity_job_from_wire({"original": ORIGINAL, "edited": 3})


@pytest.fixture(scope="module")
def worker() -> ThreadPoolExecutor:
    executor = ThreadPoolExecutor(max_workers=1)
    yield executor
    executor.shutdown()


@pytest.mark.anyio
async def test_concurrent_edits_are_measured_in_one_encoder_batch(worker: ThreadPoolExecutor) -> None:
    from app.ml.service.text_similarity import SimilarityBatcher
    from app.ml.text.encoder import sentence_encoder

    batcher = SimilarityBatcher(worker, max_wait_s=0.02)
    pairs = [(ORIGINAL, ORIGINAL), (ORIGINAL, CLOSE), (ORIGINAL, FAR)]
    results = await asyncio.gather(
        *(batcher.similarity(TextSimilarityJob(a, b, f"p{i}")) for i, (a, b) in enumerate(pairs))
    )
    assert batcher.batches_run == 1 and batcher.jobs_run == 3
    same, close, far = results
    assert same.similarity == 1.0 and same.floor == SIMILARITY_FLOOR
    assert close.above_floor and not far.above_floor and far.similarity < close.similarity < 1.0
    # the very cosine the attacks compute (app/ml/text/encoder.SentenceEncoder.similarity)
    expected = sentence_encoder().similarity(ORIGINAL, [CLOSE, FAR])
    assert close.similarity == pytest.approx(float(expected[0]), abs=1e-6)
    assert far.similarity == pytest.approx(float(expected[1]), abs=1e-6)


class MeasuringService(FakeModelService):
    """The fake service plus the real similarity batcher."""

    def __init__(self, worker: ThreadPoolExecutor) -> None:
        from app.ml.service.text_similarity import SimilarityBatcher

        super().__init__(INFO, make_result)
        self.batcher = SimilarityBatcher(worker)
        self.clients: list[str] = []

    async def text_similarity(self, original: str, edited: str, client: str = "") -> TextSimilarityResult:
        self.clients.append(client)
        return await self.batcher.similarity(TextSimilarityJob(original, edited, client))


@pytest.mark.anyio
async def test_the_client_measures_through_the_server(worker: ThreadPoolExecutor) -> None:
    service = MeasuringService(worker)
    client = await started_client(Switch(service))
    try:
        result = await client.text_similarity(ORIGINAL, CLOSE, "player-7")
        assert service.clients == ["player-7"] and result.floor == SIMILARITY_FLOOR and result.above_floor
        bad = await client._client.post("/v1/text/similarity", json={"original": ORIGINAL})  # type: ignore[union-attr]
        assert bad.status_code == 422 and bad.json()["error"] == "invalid"
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_a_backend_without_text_is_unsupported_not_a_crash() -> None:
    client = await started_client(Switch(fake_service()))
    try:
        reply = await client._client.post("/v1/text/similarity", json={"original": "a", "edited": "b"})  # type: ignore[union-attr]
        assert reply.status_code == 501 and reply.json()["error"] == "unsupported"
        with pytest.raises(ServiceUnavailable):
            await client.text_similarity("a", "b")
    finally:
        await client.stop()
