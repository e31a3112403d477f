"""Training helpers and measurements, without a full training run (that takes minutes; `arena train` does it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from app.ml import ArenaModel, load_opponent
from app.ml.measure.evaluation import evaluate_robustness, find_min_effective_eps
from app.ml.opponents.cards import render_markdown
from app.ml.opponents.registry import opponent_spec
from app.ml.packs import DataPack
from app.ml.training import checkpoints
from app.ml.training.fitting import MAX_SHIFT, augment
from app.ml.training.options import TrainingOptions, hyperparameters


def test_augment_only_flips_and_shifts_and_is_seeded() -> None:
    images = torch.rand(32, 1, 28, 28)
    out = augment(images, torch.Generator().manual_seed(3))
    assert torch.equal(out, augment(images, torch.Generator().manual_seed(3)))
    for i in range(len(images)):
        candidates = []
        for source in (images[i], images[i].flip(2)):
            padded = F.pad(source, (MAX_SHIFT,) * 4)
            size = 2 * MAX_SHIFT + 1
            candidates += [padded[:, dy : dy + 28, dx : dx + 28] for dy in range(size) for dx in range(size)]
        assert any(torch.equal(out[i], c) for c in candidates)


def _state_and_card(model: ArenaModel) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    state = {k: v.contiguous() for k, v in model.net.state_dict().items()}
    card = json.loads(json.dumps(model.card))
    return state, card


def test_save_writes_a_loadable_checkpoint_and_card(model: ArenaModel, tmp_path: Path) -> None:
    state, card = _state_and_card(model)
    checkpoints.save_checkpoint(state, card, tmp_path, "fashion-cnn")
    loaded = load_opponent("fashion-cnn", models_dir=tmp_path)
    images = torch.rand(3, 1, 28, 28)
    assert torch.equal(loaded(images), model(images))
    assert (tmp_path / "fashion-cnn.md").read_text() == render_markdown(loaded.card)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fashion-cnn.json",
        "fashion-cnn.md",
        "fashion-cnn.safetensors",
    ]
    assert (tmp_path / "fashion-cnn.safetensors").stat().st_mode & 0o044 == 0o044


def test_interrupted_save_keeps_the_previous_files(
    model: ArenaModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, card = _state_and_card(model)
    checkpoints.save_checkpoint(state, card, tmp_path, "fashion-cnn")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupted(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_checkpoint(state, dict(card), tmp_path, "fashion-cnn")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert not [name for name in os.listdir(tmp_path) if "tmp" in name]


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


def test_hyperparameters_default_to_the_spec_and_refuse_nonsense() -> None:
    spec = opponent_spec("fashion-magnet")
    assert hyperparameters(spec, TrainingOptions()) == (spec.epochs, spec.batch_size, spec.lr)
    assert hyperparameters(spec, TrainingOptions(epochs=2, batch_size=16, lr=0.5)) == (2, 16, 0.5)
    for bad in ((0, None, None), (None, 0, None), (None, None, 0.0)):
        epochs, batch_size, lr = bad
        with pytest.raises(ValueError, match="need epochs >= 1, batch_size >= 1 and lr > 0"):
            hyperparameters(spec, TrainingOptions(epochs=epochs, batch_size=batch_size, lr=lr))
