"""Proportions and their confidence intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
