"""RemoteModelService: the web server's side of `arena modelsvc` (protocol in app/modelsvc/server.py). No torch.

It implements the same ModelService protocol as the in-process service, so the web layer cannot tell them apart:
  * generate() is one POST per job over pooled keep-alive connections, every call under a timeout; a full remote
    queue (503 busy) raises ServiceBusy, and a refused connection, a dropped one, a timeout or any other error
    raises ServiceUnavailable (the player sees the retrying "not available right now" page, the detail goes to
    the log and /healthz).
  * opponent_info(), opponent_names() and attack_catalog() are synchronous in the protocol, so start() fetches and
    caches them. If the model service is not up yet, start() does not fail: a monitor task keeps probing
    /v1/health and fetches the catalogue as soon as it answers.
  * The monitor also notices a restarted model service (a new instance id) and fetches the catalogue again, so the
    web server recovers by itself. health() reports ``state``: starting (never reached yet), up, down, or
    recovering (the process answers but is not ready yet, or its catalogue is being fetched again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from app.background import stop_task
from app.errors import ServiceBusy, ServiceUnavailable
from app.messages import SERVICE_BUSY, SERVICE_DOWN
from app.ml.service.classify_contracts import (
    ClassifyJob,
    ClassifyResult,
    SmallestJob,
    SmallestResult,
    classify_job_to_wire,
    classify_result_from_wire,
    smallest_job_to_wire,
    smallest_result_from_wire,
)
from app.ml.service.contracts import (
    AttackCatalog,
    ImageJob,
    ImageResult,
    OpponentInfo,
    freeze_catalog,
    info_from_wire,
    job_to_wire,
    result_from_wire,
)
from app.ml.service.episode_contracts import EpisodeJob, EpisodeResult, episode_job_to_wire, episode_result_from_wire
from app.ml.service.explain_contracts import ExplainJob, ExplainResult, explain_job_to_wire, explain_result_from_wire
from app.ml.service.text_contracts import (
    TextClassifyResult,
    TextJob,
    TextOpponentInfo,
    TextResult,
    classify_to_wire,
    text_job_to_wire,
    text_opponents_from_wire,
    text_result_from_wire,
)
from app.ml.service.text_contracts import (
    classify_result_from_wire as text_classify_result_from_wire,
)
from app.ml.service.text_edit_contracts import (
    TextSimilarityJob,
    TextSimilarityResult,
    similarity_job_to_wire,
    similarity_result_from_wire,
)
from app.ml.service.wire import WireError
from app.modelsvc.replies import InvalidAs, error_detail, request, retry_after

logger = logging.getLogger(__name__)

STARTING, UP, DOWN, RECOVERING = "starting", "up", "down", "recovering"


class RemoteModelService:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 2.0,
        probe_timeout_s: float = 2.0,
        probe_interval_s: float = 0.5,
        up_probe_interval_s: float = 2.0,
        max_connections: int = 256,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # The server answers 503 itself after its own timeout; ours is a little longer so that we hear its reason.
        self._generate_timeout = httpx.Timeout(timeout_s + 5.0, connect=connect_timeout_s, pool=1.0)
        self._call_timeout = httpx.Timeout(probe_timeout_s, connect=connect_timeout_s, pool=1.0)
        self._probe_interval_s = probe_interval_s
        self._up_probe_interval_s = up_probe_interval_s
        self._max_connections = max_connections
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._infos: dict[str, OpponentInfo] = {}
        self._names: list[str] = []
        self._attacks: AttackCatalog | None = None
        self._instance: str | None = None
        self._remote_health: dict[str, Any] = {}
        self._text_infos: dict[str, tuple[TextOpponentInfo, ...]] = {}
        self.state = STARTING
        self._state_since = time.monotonic()
        self.last_error: str | None = None
        self.outages = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self.url,
            transport=self._transport,
            timeout=self._call_timeout,
            limits=httpx.Limits(
                max_connections=self._max_connections,
                max_keepalive_connections=min(64, self._max_connections),
                keepalive_expiry=30.0,
            ),
        )
        self._wake = asyncio.Event()
        await self._probe_and_sync()
        if self.state != UP:
            logger.warning("model service not reachable yet (%s); retrying in the background", self.last_error)
        self._monitor = asyncio.create_task(self._watch(), name="remote-model-service-monitor")

    async def stop(self) -> None:
        await stop_task(self._monitor)
        self._monitor = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- the protocol ------------------------------------------------------------------------------------------

    def opponent_info(self, name: str) -> OpponentInfo:
        try:
            return self._infos[name]
        except KeyError:
            if not self._names:  # the catalogue has not arrived yet: the service is down, not the name wrong
                raise ServiceUnavailable(SERVICE_DOWN) from None
            raise ServiceUnavailable(f"opponent {name!r} is not loaded in the model service") from None

    def opponent_names(self) -> list[str]:
        if not self._names:
            raise ServiceUnavailable(SERVICE_DOWN)
        return list(self._names)

    def attack_catalog(self) -> AttackCatalog:
        if self._attacks is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        return self._attacks

    async def generate(self, job: ImageJob) -> ImageResult:
        client = self._client
        if client is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        body = job_to_wire(job)
        for attempt in (1, 2):
            try:
                response = await client.post("/v1/generate", json=body, timeout=self._generate_timeout)
                break
            except httpx.PoolTimeout:
                raise ServiceBusy(SERVICE_BUSY) from None
            except httpx.TimeoutException as error:
                self._failed(f"no answer from the model service at {self.url} within the timeout ({error!r})")
                raise ServiceUnavailable(SERVICE_DOWN) from None
            except httpx.RemoteProtocolError as error:
                # A kept-alive connection the (restarted) server no longer has: one fresh try.
                if attempt == 2:
                    self._down(error)
                    raise ServiceUnavailable(SERVICE_DOWN) from None
            except httpx.TransportError as error:
                self._down(error)
                raise ServiceUnavailable(SERVICE_DOWN) from None
        if response.status_code == 200:
            try:
                result = result_from_wire(response.json())
            except (WireError, ValueError) as error:
                self._failed(f"the model service at {self.url} sent a result that does not decode: {error}")
                raise ServiceUnavailable(SERVICE_DOWN) from None
            if self.state == DOWN:
                self._wake.set()  # it is back: let the monitor confirm and refresh the catalogue
            return result
        detail = error_detail(response)
        if response.status_code == 503 and detail[0] == "busy":
            busy = ServiceBusy(SERVICE_BUSY)
            busy.retry_after_s = retry_after(response, busy.retry_after_s)
            raise busy
        self._failed(f"the model service at {self.url} answered {response.status_code} {detail[0]}: {detail[1]}")
        unavailable = ServiceUnavailable(SERVICE_DOWN)
        if response.status_code == 503:
            unavailable.retry_after_s = retry_after(response, unavailable.retry_after_s)
        raise unavailable

    async def explain(self, job: ExplainJob) -> ExplainResult:
        """POST /v1/explain: one round's explanation (not batched). Errors map as in generate()."""
        body = explain_job_to_wire(job)
        result: ExplainResult = await self._request("POST", "/v1/explain", body, explain_result_from_wire, "down")
        return result

    # -- text rounds (POST /v1/text, POST /v1/text/classify, GET /v1/text/opponents) -------------------------------

    async def text(self, job: TextJob) -> TextResult:
        result: TextResult = await self._request("POST", "/v1/text", text_job_to_wire(job), text_result_from_wire)
        return result

    async def classify_text(
        self, opponent: str, texts: list[str], client: str = "", share: str = ""
    ) -> TextClassifyResult:
        body = classify_to_wire(opponent, texts, client, share)
        result: TextClassifyResult = await self._request(
            "POST", "/v1/text/classify", body, text_classify_result_from_wire
        )
        return result

    async def text_similarity(self, original: str, edited: str, client: str = "") -> TextSimilarityResult:
        """POST /v1/text/similarity: an edit's sentence similarity to its original (the editor's op)."""
        body = similarity_job_to_wire(TextSimilarityJob(original, edited, client))
        decode = similarity_result_from_wire
        result: TextSimilarityResult = await self._request("POST", "/v1/text/similarity", body, decode)
        return result

    async def text_opponents(self) -> tuple[TextOpponentInfo, ...]:
        cached = self._text_infos.get(self._instance or "")
        if cached is None:  # fetched once per model service instance
            cached = await self._request("GET", "/v1/text/opponents", None, text_opponents_from_wire)
            self._text_infos = {self._instance or "": cached}
        return cached

    async def run_episode(self, job: EpisodeJob) -> EpisodeResult:
        """POST /v1/episodes: one CartPole episode (issue #19). Errors map as for text; 501 (a backend without
        episodes) is ServiceUnavailable too."""
        result: EpisodeResult = await self._request(
            "POST", "/v1/episodes", episode_job_to_wire(job), episode_result_from_wire
        )
        return result

    async def classify(self, job: ClassifyJob) -> ClassifyResult:
        """POST /v1/classify: a painter's answer (batched on the server). A 422 is the job's fault: ValueError."""
        body = classify_job_to_wire(job)
        result: ClassifyResult = await self._request(
            "POST", "/v1/classify", body, classify_result_from_wire, "value_error"
        )
        return result

    async def smallest_attack(self, job: SmallestJob) -> SmallestResult:
        """POST /v1/smallest: the machine's smallest attack on one image (computed once on the server)."""
        body = smallest_job_to_wire(job)
        result: SmallestResult = await self._request(
            "POST", "/v1/smallest", body, smallest_result_from_wire, "value_error"
        )
        return result

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        decode: Callable[[Any], Any],
        invalid_as: InvalidAs = "detail",
    ) -> Any:
        return await request(
            self._client,
            method,
            path,
            body,
            decode,
            timeout=self._generate_timeout,
            failed=self._failed,
            url=self.url,
            invalid_as=invalid_as,
        )

    async def health(self) -> dict[str, Any]:
        await self._probe()
        return {
            "ok": self.state == UP,
            "state": self.state,
            "state_for_s": round(time.monotonic() - self._state_since, 1),
            "url": self.url,
            "instance": self._instance,
            "outages": self.outages,
            "last_error": self.last_error,
            "opponents": list(self._names),
            "device": self._remote_health.get("device"),
            "remote": self._remote_health,
        }

    # -- probing and recovery ----------------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self.state:
            if state == DOWN and self.state in (UP, RECOVERING):
                self.outages += 1
            logger.info("model service at %s: %s -> %s", self.url, self.state, state)
            self.state = state
            self._state_since = time.monotonic()

    def _down(self, error: BaseException) -> None:
        self.last_error = (
            f"cannot reach the model service at {self.url} ({type(error).__name__}: {error}); start it with "
            "`arena modelsvc` or point ARENA_MODEL_SERVICE_URL at it"
        )
        logger.warning(self.last_error)
        self._set_state(DOWN)
        self._wake.set()

    def _failed(self, message: str) -> None:
        self.last_error = message
        logger.warning(message)

    async def _probe(self) -> dict[str, Any] | None:
        """One GET /v1/health: updates the state and returns the body when the service is ready."""
        if self._client is None:
            return None
        try:
            response = await self._client.get("/v1/health")
            body = response.json()
        except (httpx.TransportError, ValueError) as error:
            self._down(error)
            return None
        if not isinstance(body, dict):
            self._failed(f"the model service at {self.url} sent a health report that is not an object")
            self._set_state(RECOVERING)
            return None
        self._remote_health = body
        if response.status_code != 200 or not body.get("ok"):
            self._failed(f"the model service at {self.url} is running but not ready: {body.get('last_error')}")
            self._set_state(RECOVERING)
            return None
        if body.get("instance") != self._instance or not self._names:
            self._set_state(RECOVERING)  # new process (or first contact): the catalogue must be fetched again
            self._wake.set()
            return body
        self._set_state(UP)
        return body

    async def _probe_and_sync(self) -> None:
        body = await self._probe()
        if body is None or (self.state == UP and body.get("instance") == self._instance):
            return
        try:
            await self._sync(str(body.get("instance")))
        except (httpx.TransportError, ValueError, KeyError, TypeError) as error:
            self._failed(f"could not fetch the catalogue from the model service at {self.url}: {error!r}")
            self._set_state(RECOVERING)

    async def _sync(self, instance: str) -> None:
        client = self._client
        if client is None:
            return
        names = (await client.get("/v1/opponents")).raise_for_status().json()["opponents"]
        infos = {}
        for name in names:
            infos[name] = info_from_wire((await client.get(f"/v1/opponents/{name}")).raise_for_status().json())
        attacks = (await client.get("/v1/attacks")).raise_for_status().json()["attacks"]
        self._infos, self._names, self._attacks = infos, [str(n) for n in names], freeze_catalog(attacks)
        self._instance = instance
        self.last_error = None
        self._set_state(UP)
        logger.info("model service at %s (instance %s) is up: opponents %s", self.url, instance, self._names)

    async def _watch(self) -> None:
        while True:
            interval = self._up_probe_interval_s if self.state == UP else self._probe_interval_s
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow stop()'s cancel when the event fires.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._probe_and_sync()
            except Exception:  # the monitor must outlive any surprise, or recovery would stop
                logger.exception("model service monitor: unexpected error")
