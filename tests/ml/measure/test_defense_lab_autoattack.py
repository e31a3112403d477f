"""The defense lab's standard AutoAttack row: planned for every defended opponent, run as torchattacks ships it,
named exactly, and in every committed card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from app.ml import load_opponent
from app.ml.measure.autoattack import AUTOATTACK, AUTOATTACK_LABEL
from app.ml.measure.autoattack_chunks import row_figures
from app.ml.measure.defense_eval import (
    APGD,
    ATTACK_LABELS,
    AUTOATTACK_ROW_ID,
    HEADLINE_EPS,
    LAB_PLANS,
    MIN_N,
    evaluate_defense,
    measure_row,
)
from app.ml.packs import DataPack


def test_every_plan_has_one_strongest_row_the_standard_autoattack_at_the_headline_budget() -> None:
    for name, plan in LAB_PLANS.items():
        strongest = [row_id for row_id, row in plan.items() if row[0] == "strongest"]
        assert strongest == [AUTOATTACK_ROW_ID], name
        role, attack, params, eps = plan[AUTOATTACK_ROW_ID]
        assert (attack, params, eps) == (AUTOATTACK, {"version": "standard"}, HEADLINE_EPS), name
    assert ATTACK_LABELS[AUTOATTACK] == AUTOATTACK_LABEL == "AutoAttack (standard)"
    assert ATTACK_LABELS[APGD] == "APGD-CE + APGD-DLR, 1 restart each, worst case per image (torchattacks)"


def test_the_row_names_what_ran_and_counts_the_detector(repo_models_dir: Path, pack: DataPack) -> None:
    """On eight images of the squeezer (BPDA breaks it within APGD-CE's iterations, so this takes seconds)."""
    squeezed = load_opponent("fashion-squeezed", models_dir=repo_models_dir)
    images, labels = pack.tensors("test", n=8)
    row = measure_row(squeezed, LAB_PLANS["fashion-squeezed"][AUTOATTACK_ROW_ID], images, labels, seed=0)
    assert row["label"] == "AutoAttack (standard)" and row["role"] == "strongest" and row["n"] == 8
    assert [c["attack"] for c in row["components"]] == ["APGD", "APGDT", "FAB", "Square"]
    square = row["components"][-1]
    assert square["queries"] == 5000
    for part in ("APGD (ce,", "APGDT (dlr (targeted), 9 target classes", "FAB (9 target classes", "Square (5000"):
        assert part in row["implementation"]
    assert "BPDA" in row["attacked_view"] and "detector is not in the loss" in row["attacked_view"]
    assert "RobustBench" in row["strongest_by"]
    with torch.no_grad():
        clean = (squeezed(images).argmax(1) == labels).float().mean().item()
    assert row["clean_accuracy"] == pytest.approx(clean)
    assert row["accuracy"] <= clean
    assert "detected_of_fooled" in row and "evaded" in row
    assert row["subset"] == "first 8 test images"


def test_a_short_autoattack_run_states_its_n_and_keeps_the_lab_header(repo_models_dir: Path, tmp_path: Path) -> None:
    for name in ("fashion-squeezed", "fashion-cnn"):
        for ext in ("json", "md", "safetensors"):
            if (repo_models_dir / f"{name}.{ext}").exists():
                shutil.copy(repo_models_dir / f"{name}.{ext}", tmp_path)
    before = json.loads((tmp_path / "fashion-squeezed.json").read_text())["defense_lab"]
    assert before["n"] == MIN_N
    with pytest.raises(ValueError, match="only an AutoAttack row alone"):
        evaluate_defense("fashion-squeezed", rows=["pgd10-0.1"], n=8, models_dir=tmp_path, progress=False)
    card = evaluate_defense("fashion-squeezed", rows=[AUTOATTACK_ROW_ID], n=8, models_dir=tmp_path, progress=False)
    lab = card["defense_lab"]
    assert {k: lab[k] for k in ("n", "subset", "clean_accuracy", "measured")} == {
        k: before[k] for k in ("n", "subset", "clean_accuracy", "measured")
    }
    assert lab["rows"][AUTOATTACK_ROW_ID]["n"] == 8
    command = "arena defense-eval --opponent fashion-squeezed --row autoattack-0.1"
    assert lab["rows"][AUTOATTACK_ROW_ID]["command"] == command
    markdown = (tmp_path / "fashion-squeezed.md").read_text()
    assert "| autoattack-0.1 | strongest | AutoAttack (standard) |" in markdown
    assert "on the first 8 test images (n = 8;" in markdown


# AutoAttack rows that ran on fewer than 1,000 images (one torch thread on 2 CPU cores shared with other work, by a
# fixed deadline); each card states the n. `arena defense-eval --opponent NAME --row autoattack-0.1` completes one;
# fashion-defgan's runs in resumable chunks (its row's command resumes it), kept in its .autoattack.json file.
SHORT_AUTOATTACK = {"fashion-magnet": 100, "fashion-defgan": 10}


def test_every_defended_card_has_its_autoattack_row(repo_models_dir: Path) -> None:
    for name in LAB_PLANS:
        lab = json.loads((repo_models_dir / f"{name}.json").read_text())["defense_lab"]
        assert AUTOATTACK_ROW_ID in lab["rows"], f"run `arena defense-eval --opponent {name} --row {AUTOATTACK_ROW_ID}`"
        row = lab["rows"][AUTOATTACK_ROW_ID]
        assert row["attack"] == AUTOATTACK and row["eps"] == HEADLINE_EPS and row["label"] == AUTOATTACK_LABEL
        assert row["n"] >= SHORT_AUTOATTACK.get(name, MIN_N), f"{name}: AutoAttack on {row['n']} images only"
        assert row["accuracy"] <= row["clean_accuracy"]
        command = f"arena defense-eval --opponent {name} --row {AUTOATTACK_ROW_ID}"
        if "partial_results" in row:  # a chunked run: the row is what its committed chunks give
            partial = json.loads((repo_models_dir / row["partial_results"]).read_text())
            figures = row_figures(partial)
            assert {k: row[k] for k in figures} == figures
            assert row["command"] == f"{command} --n {MIN_N} --chunk {partial['chunk']}"
            assert row["subset"].startswith(f"first {row['n']:,} of {MIN_N:,} test images")
            assert f"resumable with `{row['command']}`" in row["subset"]
        else:
            assert row["subset"] == f"first {row['n']} test images"
            assert row["command"] == command
        markdown = (repo_models_dir / f"{name}.md").read_text()
        assert f"| {AUTOATTACK_ROW_ID} | strongest | {AUTOATTACK_LABEL} |" in markdown
        assert f"on the {row['subset']} (n = {row['n']};" in markdown


def test_the_note_names_the_view_attacked(repo_models_dir: Path) -> None:
    """BPDA only where the transform hides its gradient; MagNet's reformer is differentiated as it is."""
    from app.ml.measure.autoattack import autoattack_note

    magnet = autoattack_note(load_opponent("fashion-magnet", models_dir=repo_models_dir), HEADLINE_EPS, 0)
    assert magnet["attacked_view"].startswith("the deployed defense itself") and "BPDA" not in magnet["attacked_view"]
    jpeg = autoattack_note(load_opponent("fashion-jpeg", models_dir=repo_models_dir), HEADLINE_EPS, 0)
    assert jpeg["attacked_view"].startswith("BPDA view") and "detector" not in jpeg["attacked_view"]
    robust = autoattack_note(load_opponent("fashion-robust", models_dir=repo_models_dir), HEADLINE_EPS, 0)
    assert robust["attacked_view"].startswith("the deployed model itself")
    assert "iterations here: APGD 10, APGDT 10, FAB 10" in robust["differs_from_reference"]
