"""Claims in docs/scaling.md and benchmarks/RESULTS.md that follow from the code or the files, checked so they
cannot drift again."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SCALING = (ROOT / "docs" / "scaling.md").read_text()
NUMBER_WORDS = {"three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}


def default(name: str) -> float:
    return float(Settings.model_fields[name].default)


def test_scaling_gives_the_database_pool_defaults() -> None:
    size, overflow = int(default("db_pool_size")), int(default("db_pool_overflow"))
    assert f"pool {size} plus overflow {overflow}" in SCALING
    assert f"replicas × {size + overflow}" in SCALING
    assert f"more than {default('db_pool_timeout_s'):g} s" in SCALING


def test_scaling_says_an_exhausted_pool_answers_503_not_500() -> None:
    assert "answered 503 with\n  `Retry-After`" in SCALING
    assert not re.search(r"fails with 500|pool-timeout 500s|44-7\d", SCALING)


def test_scaling_counts_the_compose_services() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    claimed = re.search(r"`docker-compose.yml` has (\w+) services", SCALING)
    assert claimed and NUMBER_WORDS[claimed.group(1)] == len(services)
    for name in services:
        assert f"* `{name}`:" in SCALING


def test_results_sections_run_in_the_order_the_header_says() -> None:
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    dates = [re.search(r"\d{4}-\d{2}-\d{2}", line) for line in results.splitlines() if line.startswith("## ")]
    assert all(dates), "every section names its date"
    found = [match.group(0) for match in dates if match]
    assert found == sorted(found)
    header = results.split("\n## ", 1)[0]
    assert "oldest first" in header and "newest" not in header.lower()
