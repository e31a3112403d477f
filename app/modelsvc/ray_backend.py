"""`arena modelsvc --backend ray`: the model service as a Ray Serve deployment, for more than one GPU or machine.

It speaks protocol v1 of app/modelsvc/server.py, served by the very same FastAPI app (``create_server_app``), so the
web server's RemoteModelService (ARENA_MODEL_SERVICE_URL) cannot tell it from `arena modelsvc`. What changes is who
batches and where the work runs:

* Each replica loads the opponents into an InProcessModelService (the same loading, device placement and torch
  worker thread as in-process) and runs every batch through that service's own compute step (``run_batch``), so an
  image made here is the image the in-process service makes for the same job.
* Batching is Ray Serve's: ``@serve.batch`` on ``generate_batch`` with ``max_batch_size`` = ARENA_SERVICE_MAX_BATCH
  and ``batch_wait_timeout_s`` = ARENA_SERVICE_MAX_WAIT_MS / 1000. A batch may mix opponents or attacks; it is split
  into groups of compatible jobs (``ImageJob.batch_key``), one attack call per group.
* Admission is the in-process service's (app/ml/service/admission.py): each replica holds every client to its share
  of compute units in flight and refuses the rest at once (503 busy). Serve's batcher is first come, first served:
  the round-robin between clients is the in-process scheduler's alone.
* ``max_ongoing_requests`` per replica is twice the batch size (one batch running, the next one filling; Serve's
  default of 5 would cap every batch at 5), and ``max_queued_requests`` = ARENA_SERVICE_QUEUE_SIZE: beyond that
  Serve itself answers 503, which the client treats like a busy in-process queue.
* Replicas: a fixed number, or autoscaling between ``replicas`` and ``max_replicas`` on ongoing requests per replica
  (target: one full batch). ``ray_actor_options`` reserves ``num_gpus`` (and ``num_cpus``) per replica, so Ray puts
  one replica on each GPU.

Ray never starts here by itself: ``serve()`` (the CLI) starts or joins a Ray instance; ``deploy()`` is what the CLI
and the tests call once Ray is up. ``ray`` is an optional extra (``pip install -e '.[ray]'``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import ray
from ray import serve

from app.config import Settings, get_settings
from app.errors import ServiceBusy, ServiceUnavailable
from app.messages import SERVICE_DOWN
from app.ml.service.admission import AdmissionBudget
from app.ml.service.classify_contracts import ClassifyJob, ClassifyResult, SmallestJob, SmallestResult
from app.ml.service.contracts import AttackCatalog, ImageJob, ImageResult, OpponentInfo
from app.ml.service.cost import job_units
from app.ml.service.episode_contracts import EpisodeJob, EpisodeResult
from app.ml.service.explain_contracts import ExplainJob, ExplainResult
from app.ml.service.text_contracts import TextClassifyResult, TextJob, TextOpponentInfo, TextResult
from app.ml.service.text_edit_contracts import TextSimilarityResult, TextSimilarityService
from app.modelsvc.factory import default_model_service
from app.modelsvc.server import create_server_app

logger = logging.getLogger(__name__)

APP_NAME = "arena-modelsvc"
DEPLOYMENT_NAME = "ModelService"


@dataclass(frozen=True)
class RayOptions:
    """How many replicas and what each reserves. ``max_replicas`` above ``replicas`` turns on autoscaling.
    ``gpus_per_replica=None`` means: 1 where the Ray cluster has a GPU and ARENA_DEVICE is not cpu, else 0."""

    replicas: int = 1
    max_replicas: int = 0
    gpus_per_replica: float | None = None
    cpus_per_replica: float = 1.0

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"--replicas must be at least 1, not {self.replicas}")
        if self.max_replicas and self.max_replicas < self.replicas:
            raise ValueError(
                f"--max-replicas ({self.max_replicas}) must be 0 (a fixed number) or at least --replicas "
                f"({self.replicas})"
            )
        if (self.gpus_per_replica is not None and self.gpus_per_replica < 0) or self.cpus_per_replica <= 0:
            raise ValueError("--gpus-per-replica must be >= 0 and --cpus-per-replica > 0")

    @property
    def autoscaling(self) -> bool:
        return self.max_replicas > self.replicas

    def resolved(self, settings: Settings, cluster_gpus: float) -> RayOptions:
        if self.gpus_per_replica is not None:
            return self
        return replace(self, gpus_per_replica=1.0 if cluster_gpus >= 1 and settings.device != "cpu" else 0.0)


def deployment_options(settings: Settings, options: RayOptions) -> dict[str, Any]:
    """The Serve deployment options for these settings (plain data, so that they can be checked without Ray)."""
    max_batch = settings.service_max_batch
    config: dict[str, Any] = {
        "name": DEPLOYMENT_NAME,
        "ray_actor_options": {"num_gpus": options.gpus_per_replica or 0.0, "num_cpus": options.cpus_per_replica},
        # At least one full batch must be able to wait in a replica, or batches never grow past this number.
        "max_ongoing_requests": 2 * max_batch,
        "max_queued_requests": settings.service_queue_size,
        # Loading the opponents and finding their eligible test images takes a while on CPU.
        "health_check_timeout_s": 60,
    }
    if options.autoscaling:
        config["autoscaling_config"] = {
            "min_replicas": options.replicas,
            "max_replicas": options.max_replicas,
            "target_ongoing_requests": max_batch,
        }
    else:
        config["num_replicas"] = options.replicas
    return config


def batch_groups(jobs: Sequence[ImageJob]) -> list[list[int]]:
    """Positions of the jobs, grouped by what can share one attack call, in order of first appearance."""
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for position, job in enumerate(jobs):
        groups[job.batch_key].append(position)
    return list(groups.values())


class ReplicaModelService:
    """The ModelService that the protocol server sees inside one replica: catalogue and health from the loaded
    InProcessModelService, ``generate`` through the replica's Serve batcher."""

    def __init__(self, replica: ModelServiceReplica) -> None:
        self._replica = replica

    async def start(self) -> None:
        await self._replica.inner.start()

    async def stop(self) -> None:
        await self._replica.inner.stop()

    async def generate(self, job: ImageJob) -> ImageResult:
        return await self._replica.generate(job)

    def opponent_info(self, name: str) -> OpponentInfo:
        return self._replica.inner.opponent_info(name)

    def opponent_names(self) -> list[str]:
        return self._replica.inner.opponent_names()

    def attack_catalog(self) -> AttackCatalog:
        return self._replica.inner.attack_catalog()

    async def explain(self, job: ExplainJob) -> ExplainResult:
        """Not batched: straight to the replica's in-process service (its worker thread, its timeout)."""
        return await self._replica.inner.explain(job)

    async def text_similarity(self, original: str, edited: str, client: str = "") -> TextSimilarityResult:
        """Not through Serve's batcher: the inner service batches edits itself (app/ml/service/text_similarity.py)."""
        inner = cast(TextSimilarityService, self._replica.inner)
        return await inner.text_similarity(original, edited, client)

    # Text rounds and classifications: not through the Serve batcher, straight to the replica's in-process service,
    # whose own text lane batches them (app/ml/service/text_lane.py).
    async def text(self, job: TextJob) -> TextResult:
        return await self._replica.inner.text(job)

    async def classify_text(
        self, opponent: str, texts: list[str], client: str = "", share: str = ""
    ) -> TextClassifyResult:
        return await self._replica.inner.classify_text(opponent, texts, client, share)

    async def text_opponents(self) -> tuple[TextOpponentInfo, ...]:
        return await self._replica.inner.text_opponents()

    async def run_episode(self, job: EpisodeJob) -> EpisodeResult:
        """Not batched: the replica's in-process service runs it in its bounded, per-client episode lane."""
        return await self._replica.inner.run_episode(job)

    async def classify(self, job: ClassifyJob) -> ClassifyResult:
        """Painters' answers go through the replica's in-process scheduler (batched, fair per client), not Serve's
        batcher: one forward pass each, so Serve's batching would add its wait for nothing."""
        return await self._replica.inner.classify(job)

    async def smallest_attack(self, job: SmallestJob) -> SmallestResult:
        return await self._replica.inner.smallest_attack(job)

    async def health(self) -> dict[str, Any]:
        return await self._replica.health()


@serve.ingress()
class ModelServiceReplica:
    """One replica: a loaded InProcessModelService, the Serve batcher in front of its compute step, and the
    protocol-v1 HTTP app (built per replica by ``__serve_build_asgi_app__``)."""

    def __init__(self, settings: Settings) -> None:
        # Never a RemoteModelService here: this *is* the model service.
        local = settings.model_copy(update={"model_service_url": ""})
        self.settings = local
        self.inner = default_model_service(local)
        self.timeout_s = local.service_timeout_s
        self.generate_batch.set_max_batch_size(local.service_max_batch)
        self.generate_batch.set_batch_wait_timeout_s(local.service_max_wait_ms / 1000.0)
        self.admission = AdmissionBudget()
        self.largest_batch = 0
        self.last_error: str | None = None

    def __serve_build_asgi_app__(self) -> Any:
        # The app's lifespan starts ReplicaModelService, which loads the opponents on the inner worker thread.
        return create_server_app(ReplicaModelService(self), backend="ray")

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)  # replaced from the settings in __init__
    async def generate_batch(self, jobs: list[ImageJob]) -> list[ImageResult]:
        results: list[ImageResult | None] = [None] * len(jobs)
        for positions in batch_groups(jobs):
            group = [jobs[i] for i in positions]
            for position, result in zip(positions, await self.inner.run_batch(group), strict=True):
                results[position] = result
        self.largest_batch = max(self.largest_batch, len(jobs))
        return [result for result in results if result is not None]

    async def generate(self, job: ImageJob) -> ImageResult:
        """One job; concurrent calls (by handle or over HTTP) are batched by ``generate_batch``."""
        ticket = self.admission.admit(job.client, job_units(job))
        try:
            return await asyncio.wait_for(self.generate_batch(job), self.timeout_s)
        except (ServiceBusy, ServiceUnavailable):
            raise
        except TimeoutError:
            self.last_error = f"no result within ARENA_SERVICE_TIMEOUT_S={self.timeout_s:g} s"
            raise ServiceUnavailable(SERVICE_DOWN) from None
        except Exception as error:  # the batch failed: the client gets 503 unavailable, the log the reason
            logger.exception("model service replica failed on a batch")
            self.last_error = f"{type(error).__name__}: {error}"
            raise ServiceUnavailable(SERVICE_DOWN) from None
        finally:
            self.admission.release(ticket)

    async def health(self) -> dict[str, Any]:
        body = dict(await self.inner.health())
        body.update(
            replica=serve.get_replica_context().replica_tag,
            largest_batch=self.largest_batch,
            max_batch_size=self.settings.service_max_batch,
            last_error=self.last_error or body.get("last_error"),
        )
        return body


def build_app(settings: Settings, options: RayOptions) -> Any:
    """The Serve application (not yet running): one deployment, bound to these settings. torch in each replica gets
    the CPUs the replica reserves (ARENA_TORCH_THREADS, when set, wins)."""
    threads = settings.torch_threads or max(1, int(options.cpus_per_replica))
    replica_settings = settings.model_copy(update={"torch_threads": threads, "model_service_url": ""})
    deployment = serve.deployment(ModelServiceReplica).options(**deployment_options(settings, options))
    return deployment.bind(replica_settings)


def deploy(settings: Settings, options: RayOptions, *, host: str, port: int) -> Any:
    """Start Serve's HTTP proxy on host:port and deploy; Ray must be initialised. Returns the deployment handle."""
    options = options.resolved(settings, float(ray.cluster_resources().get("GPU", 0.0)))
    serve.start(http_options={"host": host, "port": port})
    return serve.run(build_app(settings, options), name=APP_NAME, route_prefix="/")


def serve_forever(host: str, port: int, options: RayOptions, settings: Settings | None = None) -> None:
    """`arena modelsvc --backend ray`: join the Ray cluster at RAY_ADDRESS, or start a private Ray instance bound to
    loopback, deploy, and run until Ctrl-C or SIGTERM; then shut Serve and Ray down (never `ray stop`)."""
    settings = settings or get_settings()
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        deploy(settings, options, host=host, port=port)
        logger.info("model service (Ray Serve, %s) on http://%s:%d", options, host, port)
        stopping.wait()
    finally:
        serve.shutdown()
        ray.shutdown()
