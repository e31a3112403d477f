"""`arena modelsvc`: the model service in its own process, reached over HTTP.

Protocol v1 (JSON over HTTP/1.1; no authentication, so bind to 127.0.0.1 or a private network only)
-------------------------------------------------------------------------------------------------------
The bodies are the contracts of app/ml/service/contracts.py in their wire form (``job_to_wire``, ``result_to_wire``,
``info_to_wire``): dataclass fields by name, tuples as lists, images as ``{"__ndarray__": {"dtype": "uint8",
"shape": [28, 28], "data": "<base64 of the raw bytes>"}}``. Every error body is ``{"error": <code>, "detail":
<text>}``.

  GET  /v1/health            200 when ready, 503 otherwise; body: {"ok", "instance" (a fresh id per process run,
                             so a client sees restarts), "backend", "protocol": 1, ...the backend's own health}
  GET  /v1/opponents         200 {"opponents": [names, the default first]}
  GET  /v1/opponents/{name}  200 OpponentInfo | 404 {"error": "not_found"}
  GET  /v1/attacks           200 {"attacks": [the attack catalogue, as ModelService.attack_catalog()]}
  POST /v1/generate          body: one ImageJob. 200 ImageResult
                             422 {"error": "invalid"}      the body is not an ImageJob
                             503 {"error": "busy"}         the queue is full, or the job is over its client's
                                                           share of compute units (ImageJob.client, app/ml/service/
                                                           admission.py); Retry-After says when to try again
                             503 {"error": "unavailable"}  the backend failed or timed out; Retry-After too
  POST /v1/explain           body: one ExplainJob (app/ml/service/explain_contracts.py). 200 ExplainResult; 422, 503 as
                             above; 501 {"error": "unsupported"} when the backend cannot explain. Not batched:
                             cached per round and queued in a small low-priority lane (app/ml/service/scheduler.py).
  POST /v1/text/similarity   body: one TextSimilarityJob (app/ml/service/text_edit_contracts.py). 200
                             TextSimilarityResult; 422, 503 as above; 501 {"error": "unsupported"} when the backend
                             cannot measure texts. Batched with all players' edits (app/ml/service/text_similarity.py).
  POST /v1/text              body: one TextJob (app/ml/service/text_contracts.py). 200 TextResult; 422 (not a TextJob,
                             or the text opponent is not loaded), 503 as above; 501 when the backend has no text
                             opponents.
  POST /v1/text/classify     body: {"opponent", "texts": [..], "client", "share"}. 200 TextClassifyResult; 422, 501,
                             503.
  GET  /v1/text/opponents    200 {"opponents": [TextOpponentInfo, ...]} (empty without text opponents)
  POST /v1/episodes          body: one EpisodeJob (app/ml/service/episode_contracts.py). 200 EpisodeResult; 422, 503
                             as above (503 busy also when the client already has an episode in the lane); 501
                             {"error": "unsupported"} when the backend runs no episodes. Deterministic from the job.
  POST /v1/classify          body: one ClassifyJob (app/ml/service/classify_contracts.py). 200 ClassifyResult (the
                             opponent's top-k on painted pixels, batched with everyone's jobs); 422, 503, 501 as above.
  POST /v1/smallest          body: one SmallestJob. 200 SmallestResult (the machine's smallest successful attack on one
                             test image, computed once per image and norm); 422, 503, 501 as above.

One job per request: the backend batches concurrent requests (same opponent, attack and parameters) exactly as it
does in-process, with the same bounded queue. A client keeps connections alive and sends requests concurrently.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.config import get_settings
from app.errors import ServiceBusy, ServiceUnavailable
from app.ml.service.classify_contracts import (
    classify_job_from_wire,
    classify_result_to_wire,
    smallest_job_from_wire,
    smallest_result_to_wire,
)
from app.ml.service.contracts import ModelService, catalog_to_wire, info_to_wire, job_from_wire, result_to_wire
from app.ml.service.episode_contracts import episode_job_from_wire, episode_result_to_wire
from app.ml.service.explain_contracts import explain_job_from_wire, explain_result_to_wire
from app.ml.service.text_contracts import (
    classify_from_wire,
    text_job_from_wire,
    text_opponents_to_wire,
    text_result_to_wire,
)
from app.ml.service.text_contracts import (
    classify_result_to_wire as text_classify_result_to_wire,
)
from app.ml.service.text_edit_contracts import similarity_job_from_wire, similarity_result_to_wire
from app.ml.service.wire import WireError
from app.modelsvc.factory import default_model_service

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
BACKENDS = ("inprocess",)


def error_reply(status: int, code: str, detail: str, retry_after_s: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def service_error_reply(error: ServiceBusy | ServiceUnavailable) -> JSONResponse:
    code = "busy" if isinstance(error, ServiceBusy) else "unavailable"
    return error_reply(503, code, error.message, error.retry_after_s)


def not_loaded(opponent: str) -> JSONResponse:
    return error_reply(422, "invalid", f"opponent {opponent!r} is not loaded in the model service")


def create_server_app(service: ModelService, *, backend: str = "inprocess") -> FastAPI:
    """An ASGI app serving ``service`` over protocol v1. It starts the service in its lifespan and stops it after."""
    instance = uuid.uuid4().hex[:12]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        logger.info("model service %s (%s backend) ready", instance, backend)
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="Adversarial Arena model service", version=str(PROTOCOL_VERSION), lifespan=lifespan)
    app.state.service = service

    @app.get("/v1/health")
    async def health() -> JSONResponse:
        body: dict[str, Any] = dict(await service.health())
        body.update(instance=instance, backend=backend, protocol=PROTOCOL_VERSION, ok=bool(body.get("ok")))
        return JSONResponse(body, status_code=200 if body["ok"] else 503)

    @app.get("/v1/opponents")
    async def opponents() -> dict[str, list[str]]:
        return {"opponents": service.opponent_names()}

    @app.get("/v1/opponents/{name}")
    async def opponent(name: str) -> JSONResponse:
        if name not in service.opponent_names():
            return error_reply(404, "not_found", f"opponent {name!r} is not loaded in the model service")
        return JSONResponse(info_to_wire(service.opponent_info(name)))

    @app.get("/v1/attacks")
    async def attacks() -> dict[str, list[dict[str, Any]]]:
        return {"attacks": catalog_to_wire(service.attack_catalog())}

    @app.post("/v1/generate")
    async def generate(request: Request) -> JSONResponse:
        try:
            job = job_from_wire(await request.json())
        except (WireError, ValueError) as error:
            return error_reply(422, "invalid", f"not an ImageJob: {error}")
        if job.opponent not in service.opponent_names():
            return not_loaded(job.opponent)
        try:
            result = await service.generate(job)
        except (ServiceBusy, ServiceUnavailable) as error:
            return service_error_reply(error)
        return JSONResponse(result_to_wire(result))

    @app.post("/v1/explain")
    async def explain(request: Request) -> JSONResponse:
        try:
            job = explain_job_from_wire(await request.json())
        except (WireError, ValueError) as error:
            return error_reply(422, "invalid", f"not an ExplainJob: {error}")
        if job.opponent not in service.opponent_names():
            return not_loaded(job.opponent)
        explainer = getattr(service, "explain", None)
        if explainer is None:
            return error_reply(501, "unsupported", f"the {backend} backend does not explain rounds")
        try:
            result = await explainer(job)
        except (ServiceBusy, ServiceUnavailable) as error:
            return service_error_reply(error)
        return JSONResponse(explain_result_to_wire(result))

    @app.post("/v1/text/similarity")
    async def text_similarity(request: Request) -> JSONResponse:
        try:
            job = similarity_job_from_wire(await request.json())
        except (WireError, ValueError) as error:
            return error_reply(422, "invalid", f"not a TextSimilarityJob: {error}")
        measure = getattr(service, "text_similarity", None)
        if measure is None:
            return error_reply(501, "unsupported", f"the {backend} backend does not measure texts")
        try:
            result = await measure(job.original, job.edited, job.client)
        except (ServiceBusy, ServiceUnavailable) as error:
            return service_error_reply(error)
        return JSONResponse(similarity_result_to_wire(result))

    @app.get("/v1/text/opponents")
    async def text_opponents() -> JSONResponse:
        listing = getattr(service, "text_opponents", None)
        return JSONResponse(text_opponents_to_wire(await listing() if listing is not None else ()))

    @app.post("/v1/text")
    async def text(request: Request) -> JSONResponse:
        try:
            job = text_job_from_wire(await request.json())
        except (WireError, ValueError) as error:
            return error_reply(422, "invalid", f"not a TextJob: {error}")
        return await text_reply(service, backend, "text", job)

    @app.post("/v1/text/classify")
    async def classify_text(request: Request) -> JSONResponse:
        try:
            opponent, texts, client, share = classify_from_wire(await request.json())
        except (WireError, ValueError) as error:
            return error_reply(422, "invalid", f"not a classify request: {error}")
        return await text_reply(service, backend, "classify_text", opponent, texts, client, share)

    @app.post("/v1/episodes")
    async def episodes(request: Request) -> JSONResponse:
        try:
            job = episode_job_from_wire(await request.json())
        except (WireError, ValueError) as error:
            return error_reply(422, "invalid", f"not an EpisodeJob: {error}")
        runner = getattr(service, "run_episode", None)
        if runner is None:
            return error_reply(501, "unsupported", f"the {backend} backend does not run episodes")
        try:
            episode = await runner(job)
        except (ServiceBusy, ServiceUnavailable) as error:
            return service_error_reply(error)
        return JSONResponse(episode_result_to_wire(episode))

    @app.post("/v1/classify")
    async def classify(request: Request) -> JSONResponse:
        try:
            job = classify_job_from_wire(await request.json())
        except (WireError, ValueError) as error:
            return error_reply(422, "invalid", f"not a ClassifyJob: {error}")
        if job.opponent not in service.opponent_names():
            return not_loaded(job.opponent)
        classifier = getattr(service, "classify", None)
        if classifier is None:
            return error_reply(501, "unsupported", f"the {backend} backend does not classify painted images")
        try:
            result = await classifier(job)
        except ValueError as error:
            return error_reply(422, "invalid", str(error))
        except (ServiceBusy, ServiceUnavailable) as error:
            return service_error_reply(error)
        return JSONResponse(classify_result_to_wire(result))

    @app.post("/v1/smallest")
    async def smallest(request: Request) -> JSONResponse:
        try:
            job = smallest_job_from_wire(await request.json())
        except (WireError, ValueError) as error:
            return error_reply(422, "invalid", f"not a SmallestJob: {error}")
        if job.opponent not in service.opponent_names():
            return not_loaded(job.opponent)
        search = getattr(service, "smallest_attack", None)
        if search is None:
            return error_reply(501, "unsupported", f"the {backend} backend does not search for smallest attacks")
        try:
            result = await search(job)
        except ValueError as error:
            return error_reply(422, "invalid", str(error))
        except (ServiceBusy, ServiceUnavailable) as error:
            return service_error_reply(error)
        return JSONResponse(smallest_result_to_wire(result))

    return app


async def text_reply(service: ModelService, backend: str, operation: str, *args: Any) -> JSONResponse:
    """Run one text operation of ``service``: 501 when the backend has none, 422 for an opponent it has not."""
    call = getattr(service, operation, None)
    listing = getattr(service, "text_opponents", None)
    names = {info.name for info in await listing()} if listing is not None else set()
    if call is None or not names:
        return error_reply(501, "unsupported", f"the {backend} backend does not play text rounds")
    opponent = args[0].opponent if operation == "text" else args[0]
    if opponent not in names:
        return error_reply(422, "invalid", f"text opponent {opponent!r} is not loaded in the model service")
    try:
        result = await call(*args)
    except (ServiceBusy, ServiceUnavailable) as error:
        return service_error_reply(error)
    wire = text_result_to_wire(result) if operation == "text" else text_classify_result_to_wire(result)
    return JSONResponse(wire)


def build_backend(backend: str) -> ModelService:
    """The ModelService the server wraps, configured from the same ARENA_* settings as an in-process one."""
    if backend == "inprocess":
        # The very service `make play` runs in-process; ARENA_MODEL_SERVICE_URL is cleared so it never points the
        # model service at itself.
        return default_model_service(get_settings().model_copy(update={"model_service_url": ""}))
    raise ValueError(f"unknown model service backend {backend!r}; choose one of: {', '.join(BACKENDS)}")


def serve(host: str, port: int, backend: str) -> None:
    app = create_server_app(build_backend(backend), backend=backend)
    # Keep-alive longer than the client's pool keeps idle connections, so the server never closes one under it.
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_keep_alive=75)
