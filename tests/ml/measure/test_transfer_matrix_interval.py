"""The transfer matrix's own Wilson interval (ml may not import app.stats) must be the stats one, to the bit."""

from __future__ import annotations

from app.ml.measure.transfer_matrix import wilson95
from app.stats.intervals import wilson_interval


def test_wilson95_is_the_stats_interval_exactly() -> None:
    for n in [*range(1, 80), 500, 999, 1000, 4321, 10_000]:
        for k in {0, 1, 2, n // 3, n // 2, n - 2, n - 1, n} if n > 80 else range(n + 1):
            if 0 <= k <= n:
                assert wilson95(k, n) == wilson_interval(k, n), (k, n)
