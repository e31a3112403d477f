"""The in-process model service: the only place the server runs torch.

Requests from many players arrive on the event loop; a collector task drains them from a bounded queue into
batches of compatible jobs (same opponent, attack and parameters) and hands each batch to one worker thread that
owns the models. The event loop never waits on torch: it only awaits futures the worker resolves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.config import get_settings
from app.errors import ServiceBusy, ServiceUnavailable
from app.messages import SERVICE_BUSY, SERVICE_DOWN
from app.ml.attacks import describe_attacks, get_attack
from app.ml.defenses.outcome import defense_outcomes
from app.ml.measure.explain import explain as explain_round
from app.ml.opponents import eligibility
from app.ml.opponents.registry import OpponentCorrupt, OpponentMissing, load_opponent
from app.ml.packs import get_pack
from app.ml.service.conditions import shown_candidate
from app.ml.service.contracts import AttackCatalog, ImageJob, ImageResult, OpponentInfo, freeze_catalog
from app.ml.service.explain_contracts import ExplainJob, ExplainResult
from app.ml.service.tensors import quantize_within_budget, to_tensor

logger = logging.getLogger(__name__)


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ServiceUnavailable("ARENA_DEVICE=cuda but no CUDA device is available; use auto or cpu")
    return torch.device(requested)


def worker_threads(requested: int) -> int:
    """torch threads for the model worker. 0 means every core but one: the event loop needs a core of its own, and
    on the 2-core reference machine one torch thread gave lower single-player latency than two with the same batched
    throughput (benchmarks/RESULTS.md, round creation)."""
    if requested > 0:
        return requested
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass
class _Pending:
    job: ImageJob
    future: asyncio.Future[ImageResult]


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
    ) -> None:
        self._opponent_names = tuple(opponents)
        self._requested_device = device
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.timeout_s = timeout_s
        self._torch_threads = torch_threads
        self._models_dir = models_dir
        self._data_dir = data_dir
        self._queue_size = queue_size
        self._queue: asyncio.Queue[_Pending] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._collector: asyncio.Task[None] | None = None
        self._opponents: dict[str, _Opponent] = {}
        self.device = torch.device("cpu")
        self.batches_run = 0
        self.jobs_run = 0
        self._last_error: str | None = None
        self._attack_catalog: AttackCatalog | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.device = resolve_device(self._requested_device)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-worker")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load_all)
        self._queue = asyncio.Queue(maxsize=self._queue_size)
        self._collector = asyncio.create_task(self._collect_forever(), name="model-service-collector")

    async def stop(self) -> None:
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
            self._collector = None
        if self._queue is not None:
            while not self._queue.empty():
                pending = self._queue.get_nowait()
                if not pending.future.done():
                    pending.future.set_exception(ServiceUnavailable(SERVICE_DOWN))
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

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
        if self._queue is None or self._collector is None or self._collector.done():
            raise ServiceUnavailable(SERVICE_DOWN)
        future: asyncio.Future[ImageResult] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(job, future))
        except asyncio.QueueFull:
            raise ServiceBusy(SERVICE_BUSY) from None
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            future.cancel()
            raise ServiceUnavailable(SERVICE_DOWN) from None

    async def run_batch(self, jobs: Sequence[ImageJob]) -> list[ImageResult]:
        """Attack one group of compatible jobs (a single ``batch_key``) now, on the worker thread that holds the
        models, without this service's queue: for a batcher outside this class (Ray Serve's ``@serve.batch`` in
        app/modelsvc/ray_backend.py). Each result is the one the queue would give for the same job."""
        if self._executor is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        if len({job.batch_key for job in jobs}) != 1:
            raise ValueError("run_batch takes jobs that share one (opponent, attack, params) batch key")
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._executor, self._compute, list(jobs))
        self.batches_run += 1
        self.jobs_run += len(jobs)
        return results

    async def explain(self, job: ExplainJob) -> ExplainResult:
        """Why the machine fails for one round (app/ml/measure/explain.py): on the worker thread that holds the models,
        but not through the batching queue (a round's explanation is its own batch of a few hundred forward passes)."""
        if self._executor is None:
            raise ServiceUnavailable(SERVICE_DOWN)
        model = self._opponents[self.opponent_info(job.opponent).name].model
        future = asyncio.get_running_loop().run_in_executor(self._executor, explain_round, model, job)
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            raise ServiceUnavailable(SERVICE_DOWN) from None

    async def health(self) -> dict[str, Any]:
        running = self._collector is not None and not self._collector.done()
        return {
            "ok": running and bool(self._opponents),
            "device": str(self.device),
            "opponents": sorted(self._opponents),
            "queue": self._queue.qsize() if self._queue is not None else 0,
            "batches_run": self.batches_run,
            "jobs_run": self.jobs_run,
            "last_error": self._last_error,
        }

    # -- batching ----------------------------------------------------------------------------------------------

    async def _collect_forever(self) -> None:
        queue = self._queue
        if queue is None:
            raise RuntimeError("collector started before the queue")
        loop = asyncio.get_running_loop()
        while True:
            first = await queue.get()
            batch = [first]
            # Whatever queued while the last batch ran joins at once; then wait briefly for stragglers.
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            groups: dict[tuple[Any, ...], list[_Pending]] = defaultdict(list)
            for pending in batch:
                if not pending.future.cancelled():
                    groups[pending.job.batch_key].append(pending)
            for group in groups.values():
                await self._run_group(loop, group)

    async def _run_group(self, loop: asyncio.AbstractEventLoop, group: list[_Pending]) -> None:
        try:
            results = await loop.run_in_executor(self._executor, self._compute, [p.job for p in group])
        except Exception as exc:  # one bad batch must not kill the collector
            logger.exception("model worker failed on a batch of %d", len(group))
            self._last_error = f"{type(exc).__name__}: {exc}"
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(ServiceUnavailable(SERVICE_DOWN))
            return
        self.batches_run += 1
        self.jobs_run += len(group)
        for pending, result in zip(group, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)

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
        candidate, queries_used = shown_candidate(
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
                image_index=int(job.image_index),
                seed=int(job.seed),
                defense_verdict=None if outcomes is None else outcomes[i].verdict,
                certified_radius=None if outcomes is None else outcomes[i].certified_radius,
            )
            for i, job in enumerate(jobs)
        ]
