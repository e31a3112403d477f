"""`arena bench attacks` and `arena eval`: tiny subsets so each runs in seconds; the repository's files are never
written (the results file and the models folder are temporary copies)."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from torch import Tensor
from typer.testing import CliRunner

from app.cli import app
from app.config import get_settings
from app.ml import ArenaModel
from app.ml.measure.bench import select_suite
from app.ml.measure.robustness import parse_attacks, robustness_table

runner = CliRunner()


@pytest.fixture
def models_copy(tmp_path: Path, repo_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "models"
    folder.mkdir()
    for path in repo_models_dir.glob("*"):
        if path.name.startswith(("fashion-cnn.", "advgan-fashion-cnn.")):
            shutil.copy(path, folder / path.name)
    monkeypatch.setenv("ARENA_MODELS_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def test_bench_attacks_prints_the_table_and_appends_a_dated_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nearlier section\n")
    args = ["bench", "attacks", "--attacks", "fgsm,pgd-early-stop", "--n", "8", "--no-ratios", "--threads", "1"]
    result = runner.invoke(app, [*args, "--write-results", "--results-file", str(results)])
    assert result.exit_code == 0, result.output
    assert "| fgsm | arena | white-box | 8 | 0.1 | defaults |" in result.output
    assert "| pgd-early-stop | arena | white-box | 8 | 0.1 | steps=10, early_stop=True |" in result.output
    text = results.read_text()
    assert text.startswith("# Benchmark results\n\nearlier section\n")  # appended, nothing rewritten
    assert "## Attack benchmark (`arena bench attacks`) — " in text and " UTC" in text
    assert "`arena bench attacks --attacks fgsm,pgd-early-stop --n 8 --reps 5 --seed 0 --no-ratios --threads 1`" in text
    assert "CPU cores" in text and "| pgd-early-stop | arena |" in text


def test_bench_attacks_rejects_unknown_names() -> None:
    result = runner.invoke(app, ["bench", "attacks", "--attacks", "pgdd", "--no-ratios"])
    assert result.exit_code == 1
    assert "unknown benchmark attack(s) pgdd" in result.output and "advgan" in result.output


def test_suite_includes_advgan_and_early_stop_and_caps_batches() -> None:
    suite = select_suite("advgan,pgd-early-stop", n=16)
    assert suite == {"advgan": ({}, 0.1, 16), "pgd-early-stop": ({"steps": 10, "early_stop": True}, 0.1, 16)}


def test_eval_writes_the_table_and_keeps_every_other_key(models_copy: Path) -> None:
    before = json.loads((models_copy / "fashion-cnn.json").read_text())
    args = ["eval", "--model", "fashion-cnn", "--n", "12", "--eps", "0.05,0.1", "--attacks", "fgsm,pgd:steps=2"]
    result = runner.invoke(app, [*args, "--threads", "1"])
    assert result.exit_code == 0, result.output
    after = json.loads((models_copy / "fashion-cnn.json").read_text())
    table = after.pop("robustness_table")
    before.pop("robustness_table", None)
    assert after == before  # the checkpoint's sha256 and every other figure untouched
    assert [(r["attack"], r["eps"], r["n"]) for r in table["rows"]] == [
        ("fgsm", 0.05, 12),
        ("fgsm", 0.1, 12),
        ("pgd", 0.05, 12),
        ("pgd", 0.1, 12),
    ]
    assert table["rows"][2]["params"]["steps"] == 2
    for row in table["rows"]:
        assert 0 <= row["accuracy"] <= table["clean_accuracy"] and 0 <= row["success_rate"] <= 1
    assert table["command"].startswith("arena eval --model fashion-cnn --n 12")
    markdown = (models_copy / "fashion-cnn.md").read_text()
    assert "## Robustness table" in markdown and "| pgd | white-box | steps=2" in markdown
    assert "| pgd | white-box |" in result.output


def test_eval_with_a_bad_attack_says_what_is_valid(models_copy: Path) -> None:
    result = runner.invoke(app, ["eval", "--n", "4", "--attacks", "pgd:stepz=3"])
    assert result.exit_code == 1
    assert "stepz" in result.output and "steps" in result.output


def test_white_box_attacks_are_skipped_for_a_model_that_is_not_differentiable(
    model: ArenaModel, test_images: tuple[Tensor, Tensor]
) -> None:
    frozen = copy.deepcopy(model)
    frozen.card = {**model.card, "differentiable": False}
    images, labels = test_images[0][:6], test_images[1][:6]
    attacks = parse_attacks("fgsm,square:max_queries=10")
    table = robustness_table(frozen, images, labels, attacks=attacks, eps_list=[0.1])
    fgsm, square = table["rows"]
    assert fgsm["skipped"] and "not differentiable" in fgsm["skipped"] and fgsm["accuracy"] is None
    assert square["skipped"] is None and square["accuracy"] is not None and square["median_queries"] <= 10
