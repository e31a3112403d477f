"""A small run of benchmarks/workshop_load.py: a live server on loopback, 30 players holding their phone streams,
3 big screens. Every answer must reach every screen, within a second at the 95th percentile."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import tempfile
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "workshop_load.py"


def load_benchmark() -> object:
    spec = importlib.util.spec_from_file_location("workshop_load", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["workshop_load"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_thirty_phones_and_three_screens_on_loopback() -> None:
    bench = load_benchmark()
    players, screens, rounds = 30, 3, 2
    with tempfile.TemporaryDirectory() as tmp, bench.running_server(Path(tmp)) as base:  # type: ignore[attr-defined]
        results = asyncio.run(
            asyncio.wait_for(bench.run(str(base), players, screens, rounds, 3.0, 0), 180)  # type: ignore[attr-defined]
        )
    text, ok = bench.report(results, players, screens, rounds)  # type: ignore[attr-defined]
    print(text)
    assert results.errors == []
    assert results.players == players and results.player_streams_peak == players, "every phone stayed connected"
    assert len(results.acks) == players * rounds
    assert all(updates[-1][1] == players * rounds for updates in results.screen_updates), "each screen saw all"
    latencies = results.latencies()
    assert float("inf") not in latencies
    assert ok, text
