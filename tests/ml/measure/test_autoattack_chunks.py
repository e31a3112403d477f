"""The chunked AutoAttack row: chunks reproduce from their own seed, a resumed run equals an uninterrupted one,
and the row counts only the chunks done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from app.ml.measure.autoattack_chunks import CLEAN_WRONG, ChunkPlan, attack_chunk, row_figures, run_chunks
from app.ml.model import ArenaModel

pytest.importorskip("torchattacks")

EPS = 0.05  # small enough that some of the images survive, so Square runs too


def tiny_opponent() -> ArenaModel:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
    return ArenaModel(net, mean=[0.5], std=[0.5], image_shape=(1, 4, 4), num_classes=10, name="tiny").eval()


def tiny_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    images = torch.rand(n, 1, 4, 4, generator=gen)
    model = tiny_opponent()
    with torch.no_grad():
        labels = model(images).argmax(1)
    labels[0] = (labels[0] + 1) % 10  # one image the model gets wrong clean
    return images, labels


def without_timing(partial: dict) -> dict:
    out = json.loads(json.dumps(partial))
    for c in out["chunks"]:
        del c["seconds"], c["component_seconds"]
    return out


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    model = tiny_opponent()
    images, labels = tiny_images(7)
    plan = ChunkPlan(opponent="tiny", eps=EPS, seed=0, chunk=3, batched_view=True)
    whole = run_chunks(model, images, labels, plan, tmp_path / "whole.json")
    assert [(c["start"], c["stop"], c["seed"]) for c in whole["chunks"]] == [(0, 3, 0), (3, 6, 3), (6, 7, 6)]

    seen: list[int] = []
    first = run_chunks(
        model, images, labels, plan, tmp_path / "resumed.json", max_chunks=1, after_chunk=lambda p: seen.append(1)
    )
    assert len(first["chunks"]) == 1 and seen == [1]
    assert row_figures(first)["n"] == 3
    resumed = run_chunks(model, images, labels, plan, tmp_path / "resumed.json")
    assert without_timing(resumed) == without_timing(whole)
    assert json.loads((tmp_path / "resumed.json").read_text()) == resumed


def test_the_row_counts_the_chunks_done(tmp_path: Path) -> None:
    model = tiny_opponent()
    images, labels = tiny_images(7)
    plan = ChunkPlan(opponent="tiny", eps=EPS, seed=0, chunk=3, batched_view=False)
    partial = run_chunks(model, images, labels, plan, tmp_path / "p.json")
    robust = [r for c in partial["chunks"] for r in c["robust"]]
    broken_by = [b for c in partial["chunks"] for b in c["broken_by"]]
    figures = row_figures(partial)
    assert figures["n"] == 7
    assert broken_by[0] == CLEAN_WRONG and not robust[0]
    assert figures["clean_accuracy"] == pytest.approx(6 / 7)
    assert figures["accuracy"] == pytest.approx(sum(robust) / 7)
    assert sum(figures["broken_by"].values()) == 6 - sum(robust)
    assert all(b is None for b, r in zip(broken_by, robust, strict=True) if r)
    # Every image counted as broken is misclassified by the model itself: re-attack the chunk and check.
    again = attack_chunk(model, images[:3], labels[:3], EPS, 0, batched_view=False)
    assert again["robust"] == partial["chunks"][0]["robust"]


def test_a_partial_file_measured_otherwise_is_not_resumed(tmp_path: Path) -> None:
    model = tiny_opponent()
    images, labels = tiny_images(3)
    path = tmp_path / "p.json"
    run_chunks(model, images, labels, ChunkPlan("tiny", EPS, 0, 3, False), path)
    with pytest.raises(ValueError, match="chunk: file 3, asked 2"):
        run_chunks(model, images, labels, ChunkPlan("tiny", EPS, 0, 2, False), path)


def test_defense_gan_batched_view_classifies_as_the_deployed_model(repo_models_dir: Path) -> None:
    from app.ml.opponents.registry import load_opponent
    from app.ml.packs import get_pack

    model = load_opponent("fashion-defgan", models_dir=repo_models_dir)
    images, _ = get_pack("fashion").tensors("test", n=8)
    with torch.no_grad():
        batched, deployed = model.batched_straight_through()(images), model(images)
    assert torch.equal(batched.argmax(1), deployed.argmax(1))
    assert torch.allclose(batched, deployed, atol=1e-4)


def test_defense_eval_chunk_writes_the_row_over_the_chunks_done_and_resumes(
    repo_models_dir: Path, tmp_path: Path
) -> None:
    import shutil

    from app.ml.measure.defense_eval import AUTOATTACK_ROW_ID, evaluate_defense

    for name in ("fashion-jpeg", "fashion-cnn"):
        for ext in ("json", "md", "safetensors"):
            if (repo_models_dir / f"{name}.{ext}").exists():
                shutil.copy(repo_models_dir / f"{name}.{ext}", tmp_path)
    header = json.loads((tmp_path / "fashion-jpeg.json").read_text())["defense_lab"]
    run = {"rows": [AUTOATTACK_ROW_ID], "n": 4, "chunk": 2, "models_dir": tmp_path, "progress": False}
    with pytest.raises(ValueError, match="--chunk needs"):
        evaluate_defense("fashion-jpeg", **{**run, "rows": ["pgd10-0.1"], "n": 1000})
    card = evaluate_defense("fashion-jpeg", **run, max_chunks=1)
    row = card["defense_lab"]["rows"][AUTOATTACK_ROW_ID]
    command = "arena defense-eval --opponent fashion-jpeg --row autoattack-0.1 --n 4 --chunk 2"
    assert row["n"] == 2 and row["command"] == command
    assert row["subset"].startswith("first 2 of 4 test images") and f"resumable with `{command}`" in row["subset"]
    assert card["defense_lab"]["n"] == header["n"]  # the lab's header is the other rows'
    partial = json.loads((tmp_path / "fashion-jpeg.autoattack.json").read_text())
    assert [c["start"] for c in partial["chunks"]] == [0]

    card = evaluate_defense("fashion-jpeg", **run)
    row = card["defense_lab"]["rows"][AUTOATTACK_ROW_ID]
    partial = json.loads((tmp_path / "fashion-jpeg.autoattack.json").read_text())
    assert [c["start"] for c in partial["chunks"]] == [0, 2]
    assert row["n"] == 4 and row["accuracy"] == row_figures(partial)["accuracy"]
    assert "on the first 4 of 4 test images" in (tmp_path / "fashion-jpeg.md").read_text()
