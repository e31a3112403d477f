"""Explanations already computed, by what fixes them: a round's explanation (app/ml/measure/explain.py) is a function
of the opponent, the two images, the true label, the budget and the seed (the slice's random direction and
SmoothGrad's noise are drawn from it) and the grid sizes asked for. A bounded LRU: a page that is reloaded, or many
players opening the same shared round, cost one computation. Plain Python and numpy, no torch."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable

from app.ml.service.explain_contracts import ExplainJob, ExplainResult

DEFAULT_CACHE_SIZE = 256  # ~25 KB a 28x28 explanation (a 41x41 int64 slice, two float32 saliency maps): ~6 MB


def explain_key(job: ExplainJob) -> Hashable:
    """Everything an explanation depends on, and nothing else (not the client who asks)."""
    images = hashlib.blake2b(digest_size=16)
    for image in (job.clean, job.shown):
        images.update(str((image.dtype.str, image.shape)).encode())
        images.update(image.tobytes())
    return (
        job.opponent,
        job.seed,
        job.true_label,
        float(job.eps),
        job.norm,
        job.grid_size,
        job.line_points,
        job.smoothgrad_samples,
        images.hexdigest(),
    )


class ExplainCache:
    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, ExplainResult] = OrderedDict()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> ExplainResult | None:
        result = self._entries.get(key)
        if result is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return result

    def put(self, key: Hashable, result: ExplainResult) -> None:
        self._entries[key] = result
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
