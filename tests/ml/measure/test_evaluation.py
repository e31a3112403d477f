"""The measurements every card carries, without a full training run (that takes minutes; `arena train` does it)."""

from __future__ import annotations

import pytest

from app.ml import ArenaModel
from app.ml.measure.evaluation import evaluate_robustness, find_min_effective_eps
from app.ml.packs import DataPack


def test_evaluate_robustness_reports_how_it_measured(model: ArenaModel, pack: DataPack) -> None:
    report = evaluate_robustness(model, pack, n=64, eps_list=(0.0, 0.1), attacks={"fgsm": {}}, seed=0, progress=True)
    assert report["n"] == 64 and report["subset"] == "first 64 test images"
    by_eps = {row["eps"]: row["accuracy"] for row in report["results"]}
    assert by_eps[0.0] == report["clean_accuracy"]  # eps 0 changes nothing
    assert by_eps[0.1] < report["clean_accuracy"] - 0.3
    assert all(set(row) == {"attack", "params", "eps", "accuracy"} for row in report["results"])


def test_staircase_needs_enough_images(model: ArenaModel, pack: DataPack) -> None:
    with pytest.raises(ValueError, match="at least 1000"):
        find_min_effective_eps(model, pack, n=500)
    with pytest.raises(ValueError, match="positive"):
        find_min_effective_eps(model, pack, n=1000, candidates=[0.0, 0.1])
