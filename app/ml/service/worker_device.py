"""Where the in-process model service runs torch: the device it resolves and the threads its worker uses."""

from __future__ import annotations

import os

import torch

from app.errors import ServiceUnavailable


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
