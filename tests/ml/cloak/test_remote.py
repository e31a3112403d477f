"""The remote opponent against a real classifier over HTTP: this project's own /api/v1/classify (EfficientNet-Lite0
behind the cloak service) served by uvicorn on 127.0.0.1. Budgets are small to keep the suite fast; the claims
checked are the ones that hold at any budget (budget respected, score never goes up, L∞ within eps)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.errors import ArenaError
from app.ml.cloak.remote import (
    QueryBudgetExhausted,
    RemoteClassifier,
    RemoteClassifierConfig,
    decision_attack,
    extract,
    score_attack,
    transfer_attack,
)
from tests.imagenet import needs_imagenet, sample


def test_response_paths() -> None:
    google = {"responses": [{"labelAnnotations": [{"description": "Cat", "score": 0.9}, {"description": "Pet"}]}]}
    assert extract(google, "responses[0].labelAnnotations[*].description") == ["Cat", "Pet"]
    assert extract(google, "responses[0].labelAnnotations[*].score") == [0.9]
    assert extract(google, "responses[1].labelAnnotations[*].description") == []
    assert extract({"tags": [{"name": "dog"}]}, "tags[0].name") == ["dog"]


@pytest.fixture(scope="module")
def classifier_url(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from app.api.cloak import UploadQueue, router
    from app.ml.cloak.service import CloakService

    service = CloakService(result_dir=tmp_path_factory.mktemp("remote"), engine_factory=lambda: engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app = FastAPI(lifespan=lifespan)
    app.state.cloak = service
    app.state.upload_queue = UploadQueue(8)  # as create_app sets it: classifications wait in a bounded queue

    @app.exception_handler(ArenaError)
    async def arena_error(request: Request, error: ArenaError) -> JSONResponse:  # as app.main does for /api/
        return JSONResponse({"detail": error.message}, status_code=error.status_code)

    app.include_router(router)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the classifier server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/api/v1/classify"
    server.should_exit = True
    thread.join(timeout=10)


def remote(url: str, budget: int = 100) -> RemoteClassifier:
    return RemoteClassifier(RemoteClassifierConfig(url=url, query_budget=budget, rate_limit_per_s=1000))


@needs_imagenet
def test_the_remote_classifier_answers_like_the_local_model(engine: Any, classifier_url: str) -> None:
    photo = sample("coffee.png", (224, 224))
    answer = remote(classifier_url).classify(photo)
    local = engine.top(engine.probabilities(photo))
    assert answer.labels == tuple(p.name for p in local)
    assert answer.scores is not None and abs(answer.scores[0] - local[0].probability) < 1e-4


@needs_imagenet
def test_extra_form_fields_reach_the_server(classifier_url: str) -> None:
    """An unknown model in form_fields comes back as the server's 422: the field was sent."""
    from app.ml.cloak.remote import RemoteError

    config = RemoteClassifierConfig(url=classifier_url, form_fields={"model": "no-such-model"}, rate_limit_per_s=1000)
    with pytest.raises(RemoteError, match="422"):
        RemoteClassifier(config).classify(sample("coffee.png", (64, 64)))


@needs_imagenet
def test_budget_is_enforced(classifier_url: str) -> None:
    opponent = remote(classifier_url, budget=2)
    photo = sample("coffee.png", (64, 64))
    opponent.classify(photo)
    opponent.classify(photo)
    with pytest.raises(QueryBudgetExhausted):
        opponent.classify(photo)
    assert opponent.queries == 2


@needs_imagenet
def test_transfer_then_decision_based_refinement(engine: Any, classifier_url: str) -> None:
    photo = sample("chelsea.png", (224, 224))
    cloak = engine.cloak(photo, eps=8 / 255, steps=5, goal="untargeted", search=False)
    opponent = remote(classifier_url, budget=12)
    transferred = transfer_attack(opponent, photo, cloak.cloaked)
    assert transferred.success and transferred.final_label == cloak.after[0].name
    refined = decision_attack(opponent, photo, cloak.cloaked, max_queries=10)
    assert refined.success and refined.final_label != refined.original_label
    assert refined.linf <= transferred.linf and refined.queries <= 10 and opponent.queries <= 12
    assert opponent.classify(refined.adversarial).top != refined.original_label  # re-measured


@needs_imagenet
@pytest.mark.slow
def test_score_based_attack_lowers_the_true_score_within_budget(classifier_url: str) -> None:
    photo = sample("chelsea.png", (224, 224))
    opponent = remote(classifier_url, budget=40)
    result = score_attack(opponent, photo, eps=8 / 255, max_queries=40, seed=0)
    assert result.queries <= 40 and opponent.queries == result.queries
    assert result.linf <= 8 / 255 + 1e-9
    assert list(result.history[1:]) == sorted(result.history[1:], reverse=True)  # accepted steps only go down
    assert result.history[-1] < result.history[0]
    assert np.abs(result.adversarial.astype(int) - photo.astype(int)).max() <= 8
