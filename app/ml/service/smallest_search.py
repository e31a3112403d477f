"""The machine's smallest successful attack on one test image (issue #21; app/ml/measure/smallest.py), for the
in-process model service: on a thread of its own at the lowest priority, so that a search of a few seconds never
holds up the painters' answers on the model worker; one computation per (opponent, image, norm, seed), shared by
concurrent askers and kept (a failed one is tried again)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from app.ml.measure.smallest import smallest_attack as search_smallest
from app.ml.service.classify_contracts import SmallestJob, SmallestResult


def lowest_priority() -> None:
    """Make the calling thread the CPU's last choice (Linux: a thread's nice value is its own), so that a search of a
    few seconds yields to the event loop and the model worker that answer players (benchmarks/paint_load.py)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class SmallestSearches:
    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._executor: ThreadPoolExecutor | None = None
        self._found: dict[tuple[str, int, str, int], asyncio.Future[SmallestResult]] = {}

    async def find(self, model: Any, clean: np.ndarray, truth: int, job: SmallestJob) -> SmallestResult:
        key = (job.opponent, job.image_index, job.norm, job.seed)
        future = self._found.get(key)
        if future is None or (future.done() and future.exception() is not None):
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smallest-attack")
            loop = asyncio.get_running_loop()
            future = asyncio.ensure_future(loop.run_in_executor(self._executor, self._search, model, clean, truth, job))
            self._found[key] = future
        return await asyncio.shield(future)

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _search(self, model: Any, clean: np.ndarray, truth: int, job: SmallestJob) -> SmallestResult:
        torch.set_num_threads(1)
        lowest_priority()
        return search_smallest(model, clean, truth, job, self._device)
