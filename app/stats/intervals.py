"""Proportions and their confidence intervals, and the random draws of every bootstrap interval."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (Wilson 1927), 95% by default.

    Unlike the textbook p ± z·sqrt(p(1-p)/n) it stays inside [0, 1] and does not collapse to a point at 0 of n
    or n of n, which matters for a room's first few answers. With no answers at all it is the whole of [0, 1]:
    nothing is known yet."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = (z / (1 + z2 / n)) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low, high = centre - half, centre + half
    # Exact at the ends: 0 of n has a lower bound of 0, n of n an upper bound of 1 (no rounding noise).
    if successes == 0:
        low = 0.0
    if successes == n:
        high = 1.0
    return (max(0.0, low), min(1.0, high))


@dataclass(frozen=True)
class Proportion:
    """``successes`` of ``n``; its value is 0.0, not an error, before anything is counted."""

    successes: int
    n: int

    @property
    def value(self) -> float:
        return self.successes / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.n)

    def as_dict(self) -> dict[str, object]:
        low, high = self.interval
        return {"correct": self.successes, "n": self.n, "accuracy": self.value, "ci95": [low, high]}


# -- the bootstrap's draws -----------------------------------------------------------------------------------------
# Every bootstrap here draws its resamples from Python's random.Random(seed) through getrandbits, a stream that a
# standard-library script (the research bundle's recompute.py) reproduces word for word, and maps each 32-bit word
# to an index with integer arithmetic only, so numpy (here) and plain Python (there) draw the very same resamples.

WORD_BITS = 32


def resample_words(rng: random.Random, size: int, resamples: int) -> np.ndarray:
    """(resamples, size) uint32 words: row r is one ``rng.getrandbits(32 * size)`` call, its lowest 32 bits first
    (the r-th such call on ``rng``)."""
    if size <= 0 or resamples <= 0:
        return np.zeros((max(resamples, 0), max(size, 0)), dtype=np.uint32)
    width = 4 * size
    raw = b"".join(rng.getrandbits(WORD_BITS * size).to_bytes(width, "little") for _ in range(resamples))
    return np.frombuffer(raw, dtype="<u4").reshape(resamples, size)


def word_indices(words: np.ndarray, size: int) -> np.ndarray:
    """Each word u picks item floor(u * size / 2**32) of ``size`` items (multiply and shift: integers only; its bias
    is below size / 2**32, nothing at the sizes counted here)."""
    if size >= 1 << WORD_BITS:
        raise ValueError(f"at most 2**32 - 1 items, got {size}")
    return (words.astype(np.uint64) * np.uint64(size)) >> np.uint64(WORD_BITS)


def below_index(count: int, size: int) -> int:
    """The word bound of the first ``count`` items: word_indices(u) < count exactly when u < this."""
    return -(-(count << WORD_BITS) // size)
