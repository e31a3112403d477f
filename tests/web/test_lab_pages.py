"""The lab pages: /lab/transfer shows the committed transfer matrix, or says which command makes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.deps import get_settings_dep
from app.stats.intervals import wilson_interval
from tests.conftest import MODELS_DIR


@pytest.fixture
def models_dir_override(client: TestClient, tmp_path: Path) -> Iterator[Path]:
    """Point the app's settings at an empty models folder for one test."""
    app = client.app
    settings = app.state.settings.model_copy(update={"models_dir": tmp_path})  # type: ignore[attr-defined]
    app.dependency_overrides[get_settings_dep] = lambda: settings  # type: ignore[attr-defined]
    yield tmp_path
    app.dependency_overrides.pop(get_settings_dep, None)  # type: ignore[attr-defined]


def small_matrix() -> dict[str, object]:
    cells = []
    for s in ("net-a",):
        for t, fooled, n in (("net-a", 90, 100), ("forest-b", 50, 100)):
            cells.append(
                {"surrogate": s, "target": t, "white_box": s == t, "n": n, "fooled": fooled, "rate": fooled / n}
            )
    return {
        "command": "arena transfer-matrix --eps 0.1 --n 100 --attack pgd --steps 20 --seed 0",
        "created": "2026-11-25T18:00:00+00:00",
        "definition": "cell = the share the target gets wrong",
        "eps": 0.1,
        "eps_255": 25.5,
        "attack": {"name": "pgd", "params": {"steps": 20}},
        "seeding": "seeded per image",
        "subset": "first 120 test images",
        "surrogates": ["net-a"],
        "targets": ["net-a", "forest-b"],
        "opponents": {
            "net-a": {"differentiable": True, "kind": "torch"},
            "forest-b": {"differentiable": False, "kind": "sklearn"},
        },
        "cells": cells,
        "device": "cpu",
        "machine": "test",
        "wall_time_s": 1.0,
    }


def test_missing_matrix_names_the_command(client: TestClient, models_dir_override: Path) -> None:
    response = client.get("/lab/transfer")
    assert response.status_code == 200
    assert "No transfer matrix has been measured yet" in response.text
    assert "arena transfer-matrix" in response.text and str(models_dir_override) in response.text


def test_matrix_cells_with_n_and_wilson_intervals(client: TestClient, models_dir_override: Path) -> None:
    (models_dir_override / "transfer-matrix.json").write_text(json.dumps(small_matrix()))
    text = client.get("/lab/transfer").text
    assert "90.0%" in text and "(white-box)" in text and "50.0%" in text
    low, high = wilson_interval(50, 100)
    assert f"n = 100, 95% CI {100 * low:.1f}–{100 * high:.1f}%" in text
    assert "non-neural" in text and "no gradient" in text
    assert "arena transfer-matrix --eps 0.1 --n 100 --attack pgd --steps 20 --seed 0" in text
    assert text.count("(white-box)") == 1


def test_broken_matrix_file_says_so(client: TestClient, models_dir_override: Path) -> None:
    (models_dir_override / "transfer-matrix.json").write_text("{not json")
    text = client.get("/lab/transfer").text
    assert "could not be read" in text and "arena transfer-matrix" in text


def test_committed_matrix_is_shown_and_linked(client: TestClient) -> None:
    committed = json.loads((MODELS_DIR / "transfer-matrix.json").read_text())
    text = client.get("/lab/transfer").text
    assert committed["command"] in text
    for target in committed["targets"]:
        assert f'data-target="{target}"' in text
    assert text.count("(white-box)") == len(committed["surrogates"])
    assert 'href="/lab/transfer"' in client.get("/about").text
