"""The in-process model service: the only place the server runs torch.

Requests from many players arrive on the event loop; the scheduler (app/ml/service/scheduler.py: admission by
compute units, batches filled round-robin across clients, abandoned jobs dropped, explanations cached and in a lane
of their own) groups them into batches of compatible jobs (same opponent, attack and parameters) and hands each batch
to one worker thread that owns the models. The event loop never waits on torch: it only awaits futures the worker
resolves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.config import get_settings
from app.errors import ServiceUnavailable
from app.messages import SERVICE_DOWN
from app.ml.attacks import describe_attacks, get_attack
from app.ml.defenses.outcome import defense_outcomes
from app.ml.measure.explain import explain as explain_round
from app.ml.opponents import eligibility
from app.ml.opponents.registry import OpponentCorrupt, OpponentMissing, load_opponent
from app.ml.packs import get_pack
from app.ml.service.admission import DEFAULT_GLOBAL_UNITS, DEFAULT_PER_CLIENT_UNITS, AdmissionBudget
from app.ml.service.classify_contracts import ClassifyJob, ClassifyResult, SmallestJob, SmallestResult, top_k
from app.ml.service.conditions import shown_candidate
from app.ml.service.contracts import AttackCatalog, ImageJob, ImageResult, OpponentInfo, freeze_catalog
from app.ml.service.episode_contracts import EpisodeJob, EpisodeResult
from app.ml.service.episode_lane import EpisodeLane
from app.ml.service.episode_runner import EpisodeRunner
from app.ml.service.explain_contracts import ExplainJob, ExplainResult
from app.ml.service.scheduler import Scheduler
from app.ml.service.smallest_search import SmallestSearches
from app.ml.service.tensors import quantize_within_budget, to_tensor
from app.ml.service.text_contracts import TextClassifyResult, TextJob, TextOpponentInfo, TextResult
from app.ml.service.text_edit_contracts import TextSimilarityResult
from app.ml.service.text_ops import TextOps
from app.ml.service.worker_device import resolve_device, worker_threads
from app.ml.text.opponents import TEXT_OPPONENTS

logger = logging.getLogger(__name__)


@dataclass
class _Opponent:
    model: torch.nn.Module
    info: OpponentInfo
    images: np.ndarray  # uint8 test images of the opponent's pack, (N, H, W) or (N, H, W, C)
    labels: np.ndarray


class InProcessModelService:
    """Batches image jobs and runs them on one worker thread. See the module docstring."""

    def __init__(
        self,
        *,
        opponents: Sequence[str],
        device: str = "auto",
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        queue_size: int = 1024,
        timeout_s: float = 30.0,
        torch_threads: int = 0,
        models_dir: Any = None,
        data_dir: Any = None,
        global_units: float = DEFAULT_GLOBAL_UNITS,
        per_client_units: float = DEFAULT_PER_CLIENT_UNITS,
        text_opponents: Sequence[str] = tuple(TEXT_OPPONENTS),
    ) -> None:
        self._opponent_names = tuple(opponents)
        self._text_names = tuple(text_opponents)
        self._text_ops: TextOps | None = None
        self._requested_device = device
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.timeout_s = timeout_s
        self._torch_threads = torch_threads
        self._models_dir = models_dir
        self._data_dir = data_dir
        self._queue_size = queue_size
        self.admission = AdmissionBudget(global_units=global_units, per_client_units=per_client_units)
        self._scheduler: Scheduler | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._opponents: dict[str, _Opponent] = {}
        self.device = torch.device("cpu")
        self.batches_run = 0
        self.jobs_run = 0
        self._attack_catalog: AttackCatalog | None = None
        self._episodes: EpisodeLane | None = None
        self._episode_runner: EpisodeRunner | None = None
        self._smallest: SmallestSearches | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.device = resolve_device(self._requested_device)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-worker")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load_all)
        self._scheduler = Scheduler(
            self._compute_on_worker,
            self._explain_on_worker,
            max_batch=self.max_batch,
            max_wait_s=self.max_wait_s,
            queue_size=self._queue_size,
            timeout_s=self.timeout_s,
            admission=self.admission,
            compute_classify=self._classify_on_worker,
        )
        self._scheduler.start()
        self._text_ops = TextOps(
            self._executor,
            self._text_names,
            self._models_dir,
            max_batch=self.max_batch,
            max_wait_s=self.max_wait_s,
            queue_size=self._queue_size,
            timeout_s=self.timeout_s,
            admission=self.admission,
        )
        self._text_ops.start()
        self._smallest = SmallestSearches(self.device)
        models_dir = Path(self._models_dir) if self._models_dir is not None else get_settings().models_dir
        self._episodes = EpisodeLane(self._episode_on_worker, timeout_s=self.timeout_s)
        self._episode_runner = EpisodeRunner(models_dir)

    async def stop(self) -> None:
        if self._text_ops is not None:
            await self._text_ops.stop()
        if self._scheduler is not None:
            await self._scheduler.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._smallest is not None:
            self._smallest.stop()

    def _load_all(self) -> None:
        torch.set_num_threads(worker_threads(self._torch_threads))
        for position, name in enumerate(self._opponent_names):
            try:
                model = load_opponent(name, device=self.device, models_dir=self._models_dir)
            except (OpponentMissing, OpponentCorrupt) as error:
                if position == 0:  # the default opponent: nothing can be played without it
                    raise
                logger.warning("opponent %s is not offered: %s", name, error)
                continue
            pack = get_pack(model.pack_name, self._data_dir)
            images, labels = pack.load_split("test")
            eligible = self._eligible_images(name, model, images, labels)
            card = dict(model.card)
            staircase = card.get("staircase", {})
            info = OpponentInfo(
                name=name,
                pack=pack.name,
                class_names=tuple(pack.class_names),
                eligible_indices=tuple(int(i) for i in eligible),
                min_eps=float(staircase.get("min_eps", 0.05)),
                clean_accuracy=float(len(eligible) / len(labels)),
                card=card,
                image_shape=tuple(int(size) for size in images.shape[1:]),
                differentiable=bool(getattr(model, "differentiable", card.get("differentiable", True))),
            )
            self._opponents[name] = _Opponent(model=model, info=info, images=images, labels=labels)
            logger.info(
                "opponent %s ready on %s: %d of %d test images eligible", name, self.device, len(eligible), len(labels)
            )

    def _eligible_images(self, name: str, model: Any, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The test images the opponent gets right when clean: the committed record, else the local cache, else
        asked of the model (see app/ml/opponents/eligibility.py for why and how they are keyed)."""
        key = eligibility.eligibility_key(model.card, images, labels)
        models_dir = Path(self._models_dir) if self._models_dir is not None else get_settings().models_dir
        found = eligibility.read_record(models_dir, name, key, len(labels))
        if found is None:
            found = eligibility.read_cache(name, key)
        if found is not None:
            return found
        logger.info("asking opponent %s about all %d test images (once; then cached)", name, len(labels))
        eligible = self._correctly_classified(model, images, labels)
        eligibility.write_cache(name, key, eligible)
        return eligible

    def _correctly_classified(self, model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return eligibility.correctly_classified(model, images, labels, self.device, to_tensor)

    # -- public API --------------------------------------------------------------------------------------------

    def opponent_info(self, name: str) -> OpponentInfo:
        try:
            return self._opponents[name].info
        except KeyError:
            raise ServiceUnavailable(f"opponent {name!r} is not loaded in the model service") from None

    def opponent_names(self) -> list[str]:
        return list(self._opponents)

    def attack_catalog(self) -> AttackCatalog:
        # Built once: describing an attack renders its parameters' JSON schema (pydantic), which cost ~5 ms per
        # attack, and every new round reads the catalogue (benchmarks/pool_latency.py). It is read-only, so shared.
        if self._attack_catalog is None:
            self._attack_catalog = freeze_catalog(describe_attacks())
        return self._attack_catalog

    async def generate(self, job: ImageJob) -> ImageResult:
        if self._scheduler is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        return await self._scheduler.generate(job)

    async def run_batch(self, jobs: Sequence[ImageJob]) -> list[ImageResult]:
        """Attack one group of compatible jobs (a single ``batch_key``) now, on the worker thread that holds the
        models, without this service's queue: for a batcher outside this class (Ray Serve's ``@serve.batch`` in
        app/modelsvc/ray_backend.py). Each result is the one the queue would give for the same job."""
        if self._executor is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        if len({job.batch_key for job in jobs}) != 1:
            raise ValueError("run_batch takes jobs that share one (opponent, attack, params) batch key")
        return await self._compute_on_worker(list(jobs))

    async def explain(self, job: ExplainJob) -> ExplainResult:
        """Why the machine fails for one round (app/ml/measure/explain.py): on the worker thread that holds the models,
        not batched with image jobs (a round's explanation is its own batch of a few hundred forward passes), cached
        per round and queued in the scheduler's bounded low-priority lane."""
        if self._scheduler is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        self.opponent_info(job.opponent)  # an opponent that is not loaded is refused before it queues
        return await self._scheduler.explain(job)

    async def text_similarity(self, original: str, edited: str, client: str = "") -> TextSimilarityResult:
        return await self._texts().text_similarity(original, edited, client)

    async def text(self, job: TextJob) -> TextResult:
        return await self._texts().text(job)

    async def classify_text(
        self, opponent: str, texts: list[str], client: str = "", share: str = ""
    ) -> TextClassifyResult:
        return await self._texts().classify_text(opponent, texts, client, share)

    async def text_opponents(self) -> tuple[TextOpponentInfo, ...]:
        return self._text_ops.text_opponents() if self._text_ops is not None else ()

    def _texts(self) -> TextOps:
        if self._text_ops is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        return self._text_ops

    async def run_episode(self, job: EpisodeJob) -> EpisodeResult:
        """One CartPole episode (issue #19; app/ml/service/episode_runner.py) on the worker thread that holds the
        models, through the bounded lane that takes turns between clients (app/ml/service/episode_lane.py)."""
        job.validate()
        if self._episodes is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        return await self._episodes.run(job)

    async def _episode_on_worker(self, job: EpisodeJob) -> EpisodeResult:
        if self._executor is None or self._episode_runner is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._episode_runner.run, job)

    async def classify(self, job: ClassifyJob) -> ClassifyResult:
        """The opponent's top-k on pixels a player painted: batched with everyone's jobs through the scheduler."""
        if self._scheduler is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        job.validate()
        info = self.opponent_info(job.opponent)
        if tuple(job.image.shape) != info.image_shape:
            raise ValueError(f"the image is shaped {job.image.shape}; {job.opponent} takes {info.image_shape}")
        return await self._scheduler.classify(job)

    async def smallest_attack(self, job: SmallestJob) -> SmallestResult:
        """The machine's smallest successful attack on one test image (app/ml/measure/smallest.py), computed once per
        (opponent, image, norm, seed) on the search thread; concurrent askers share the computation."""
        job.validate()
        opponent = self._opponents.get(job.opponent)
        if opponent is None or self._executor is None:
            raise ServiceUnavailable(SERVICE_DOWN if opponent else f"opponent {job.opponent!r} is not loaded")
        if job.image_index >= len(opponent.labels):
            raise ValueError(f"image_index {job.image_index} is past the {len(opponent.labels)} test images")
        if self._smallest is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        clean, truth = opponent.images[job.image_index], int(opponent.labels[job.image_index])
        return await self._smallest.find(opponent.model, clean, truth, job)

    async def health(self) -> dict[str, Any]:
        scheduler = self._scheduler
        return {
            "ok": scheduler is not None and scheduler.running and bool(self._opponents),
            "device": str(self.device),
            "opponents": sorted(self._opponents),
            "queue": scheduler.queued if scheduler is not None else 0,
            "batches_run": self.batches_run,
            "jobs_run": self.jobs_run,
            "units_in_flight": self.admission.in_flight,
            "refused": self.admission.refused,
            "jobs_dropped": scheduler.jobs_dropped if scheduler is not None else 0,
            "explain_cache_hits": scheduler.explanations.hits if scheduler is not None else 0,
            "last_error": scheduler.last_error if scheduler is not None else None,
            "episodes_run": self._episodes.episodes_run if self._episodes is not None else 0,
        }

    # -- the worker thread -------------------------------------------------------------------------------------

    async def _compute_on_worker(self, jobs: list[ImageJob]) -> list[ImageResult]:
        if self._executor is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        results = await asyncio.get_running_loop().run_in_executor(self._executor, self._compute, jobs)
        self.batches_run += 1
        self.jobs_run += len(jobs)
        return results

    async def _classify_on_worker(self, jobs: list[ClassifyJob]) -> list[ClassifyResult]:
        if self._executor is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        results = await asyncio.get_running_loop().run_in_executor(self._executor, self._classify, jobs)
        self.batches_run += 1
        self.jobs_run += len(jobs)
        return results

    def _classify(self, jobs: list[ClassifyJob]) -> list[ClassifyResult]:
        """Runs on the worker thread: one forward pass for a batch of painted images of one opponent."""
        model = self._opponents[jobs[0].opponent].model
        with torch.inference_mode():
            probs = torch.softmax(model(to_tensor(np.stack([job.image for job in jobs]), self.device)), dim=1)
        rows = probs.cpu().numpy()
        return [top_k(rows[i], job.top_k) for i, job in enumerate(jobs)]

    async def _explain_on_worker(self, job: ExplainJob) -> ExplainResult:
        if self._executor is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        model = self._opponents[job.opponent].model
        return await asyncio.get_running_loop().run_in_executor(self._executor, explain_round, model, job)

    def _compute(self, jobs: list[ImageJob]) -> list[ImageResult]:
        """Runs on the worker thread: attack a batch of compatible jobs and read the opponent's answers."""
        started = time.perf_counter()
        first = jobs[0]
        opponent = self._opponents[first.opponent]
        indices = np.array([job.image_index for job in jobs])
        clean_pixels = opponent.images[indices]
        labels = torch.from_numpy(opponent.labels[indices]).to(self.device)
        clean = to_tensor(clean_pixels, self.device)
        eps = np.array([job.eps for job in jobs], dtype=np.float64)
        eps_tensor = torch.tensor(eps, dtype=torch.float32, device=self.device)
        generators = [torch.Generator(device=self.device).manual_seed(job.seed) for job in jobs]
        attack = get_attack(first.attack, **dict(first.params))
        candidate, queries_used, steps_used = shown_candidate(
            first.condition, attack, opponent.model, clean, labels, eps_tensor, generators
        )
        shown = quantize_within_budget(clean_pixels, candidate, eps, attack.norm)
        shown_tensor = to_tensor(shown, self.device)
        with torch.inference_mode():
            clean_probs = torch.softmax(opponent.model(clean), dim=1).cpu().numpy()
            shown_probs = torch.softmax(opponent.model(shown_tensor), dim=1).cpu().numpy()
        outcomes = defense_outcomes(opponent.model, clean, shown_tensor, labels)
        change = (shown.astype(np.float64) - clean_pixels.astype(np.float64)).reshape(len(jobs), -1) / 255.0
        linf = np.abs(change).max(1)
        l2 = np.sqrt((change**2).sum(1))
        queries = None if queries_used is None else queries_used.cpu().numpy()
        budget = getattr(attack.params, "max_queries", None) if queries is not None else None
        steps = None if steps_used is None else steps_used.cpu().numpy()
        step_budget = getattr(attack.params, "steps", None) if steps is not None else None
        logger.debug("batch of %d took %.1f ms", len(jobs), (time.perf_counter() - started) * 1000)
        return [
            ImageResult(
                clean=clean_pixels[i],
                adversarial=shown[i],
                true_label=int(opponent.labels[indices[i]]),
                clean_label=int(clean_probs[i].argmax()),
                clean_confidence=float(clean_probs[i].max()),
                adversarial_label=int(shown_probs[i].argmax()),
                adversarial_probs=tuple(float(p) for p in shown_probs[i]),
                linf=float(linf[i]),
                l2=float(l2[i]),
                queries=None if queries is None else int(queries[i]),
                query_budget=None if budget is None else int(budget),
                steps=None if steps is None else int(steps[i]),
                step_budget=None if step_budget is None else int(step_budget),
                image_index=int(job.image_index),
                seed=int(job.seed),
                defense_verdict=None if outcomes is None else outcomes[i].verdict,
                certified_radius=None if outcomes is None else outcomes[i].certified_radius,
            )
            for i, job in enumerate(jobs)
        ]
