"""A small run of benchmarks/players_load.py: a live `arena serve` on loopback and PostgreSQL, 20 players joining at
once and playing 5 rounds each with no pause. No server error, and every acknowledged answer is in the database."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "players_load.py"


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("players_load", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["players_load"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # empty tables before and after
def test_twenty_players_five_rounds_on_postgres(database_url: str) -> None:
    bench = load_benchmark()
    players, rounds = 20, 5
    with tempfile.TemporaryDirectory() as tmp, bench.running_server(database_url, Path(tmp)) as base:
        [result] = asyncio.run(bench.run(base, database_url, [players], rounds, 120.0))
    report = bench.report(result)
    print(report)
    assert not result.timed_out, report
    assert result.errors == [], report
    assert result.server_errors == 0 and result.non_2xx == 0, report
    assert result.joined == players
    assert result.answers_acked == players * rounds, report
    assert result.lost == 0, "an acknowledged answer is missing from the database"
    assert result.answers_in_db == result.answers_acked
    assert result.rounds_in_db == players * rounds
    assert result.batches < result.jobs, "concurrent players shared model batches"
    assert result.ok
